#!/usr/bin/env bash
# setup-ort.sh — puts ONNX Runtime 1.30.0 (libonnxruntime.so.1, CPU, linux x86-64) into
# third_party/onnxruntime/ (git-ignored). Idempotent: does nothing when the library is already
# there with the right sha256.
#
# Route 1 (default): the npm package onnxruntime-node@1.30.0, which ships the library in
#   package/bin/napi-v6/linux/x64/libonnxruntime.so.1 — works wherever the npm registry does.
# Route 2 (machines with general internet): ORT_ROUTE=github downloads ONNX Runtime's official
#   release archive onnxruntime-linux-x64-1.30.0.tgz instead.
# Already installed elsewhere? Skip this script and set ONNXRUNTIME_SHARED_LIBRARY_PATH.
set -euo pipefail

ORT_VERSION=1.30.0
# sha256 of libonnxruntime.so.1 as shipped in onnxruntime-node@1.30.0 (linux x64).
NPM_SHA256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/onnxruntime"
lib="$dest/libonnxruntime.so.1"

have_sha() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if [ "${ORT_ROUTE:-npm}" = npm ] && have_sha "$lib" "$NPM_SHA256"; then
  echo "setup-ort: $lib already present (sha256 ok)"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "setup-ort: only linux x86-64 is scripted; install ONNX Runtime $ORT_VERSION and set ONNXRUNTIME_SHARED_LIBRARY_PATH" >&2; exit 1 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dest"

case "${ORT_ROUTE:-npm}" in
npm)
  command -v npm >/dev/null || { echo "setup-ort: npm not found (apt-get install npm), or set ONNXRUNTIME_SHARED_LIBRARY_PATH" >&2; exit 1; }
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
  tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  got="$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
  if ! have_sha "$got" "$NPM_SHA256"; then
    echo "setup-ort: sha256 mismatch for libonnxruntime.so.1 from onnxruntime-node@$ORT_VERSION: got $(sha256sum "$got" | cut -d' ' -f1), want $NPM_SHA256" >&2
    exit 1
  fi
  ;;
github)
  url="https://github.com/microsoft/onnxruntime/releases/download/v$ORT_VERSION/onnxruntime-linux-x64-$ORT_VERSION.tgz"
  curl -fsSL -o "$tmp/ort.tgz" "$url"
  if [ -n "${ORT_SHA256:-}" ] && ! have_sha "$tmp/ort.tgz" "$ORT_SHA256"; then
    echo "setup-ort: sha256 mismatch for $url" >&2; exit 1
  fi
  tar -xzf "$tmp/ort.tgz" -C "$tmp"
  got=$(ls "$tmp"/onnxruntime-linux-x64-$ORT_VERSION/lib/libonnxruntime.so.$ORT_VERSION)
  ;;
*) echo "setup-ort: unknown ORT_ROUTE=$ORT_ROUTE (npm or github)" >&2; exit 1 ;;
esac

cp "$got" "$dest/.libonnxruntime.so.1.tmp"
mv "$dest/.libonnxruntime.so.1.tmp" "$lib"
echo "setup-ort: installed ONNX Runtime $ORT_VERSION at $lib"
