#!/usr/bin/env bash
# setup-deps.sh [build|test] — installs the Debian packages artnet needs that this machine lacks.
# `make demo` runs it with `build`, `make test` with `test`; nothing else needs typing.
#
#   build: libopenblas-dev (cblas.h + libopenblas: the training backend's matrix products; without
#          it the Makefile builds the pure-Go kernels, -tags noblas), libturbojpeg0 (the fast JPEG
#          path, opened with dlopen; without it JPEGs are decoded by Go's image/jpeg), and npm when
#          ONNX Runtime is not yet in third_party/ (scripts/setup-ort.sh fetches it from npm).
#   test:  the above, and python3-onnx (the ONNX checker test), python3-pil (the crop reference
#          test), chromium (the web page test), python3-grpcio + python3-grpc-tools (the independent
#          KServe gRPC client test); without them those tests skip with one line.
#
# Idempotent and silent when everything is there. As root it runs `apt-get update` once and
# `apt-get install --no-install-recommends`; otherwise `sudo -n` when that works; otherwise it
# stops with one line giving the exact command to run. When the packages cannot be installed
# (no apt, no sudo, no network to Debian's mirrors) it says so in one line and exits 0, so that
# make goes on with the fallbacks — unless ARTNET_REQUIRE_DEPS=1 (CI, scripts/fresh-machine-check.sh),
# where anything missing is an error (exit 1).
set -euo pipefail

what=${1:-test}
case "$what" in
build) pkgs=(libopenblas-dev libturbojpeg0) ;;
test) pkgs=(libopenblas-dev libturbojpeg0 python3-onnx python3-pil chromium python3-grpcio python3-grpc-tools) ;;
*) echo "setup-deps: unknown argument '$what' (build or test)" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
strict=${ARTNET_REQUIRE_DEPS:-}

# give_up prints one line and exits: 0 (make goes on with the fallbacks) or 1 when strict.
give_up() {
  if [ "$strict" = 1 ]; then
    echo "setup-deps: $1 (ARTNET_REQUIRE_DEPS=1: failing)" >&2
    exit 1
  fi
  echo "setup-deps: $1; going on without them (pure-Go kernels / image/jpeg; tests that need them skip)" >&2
  exit 0
}

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  give_up "not a Debian-like system (no dpkg/apt-get): install OpenBLAS (cblas.h), libjpeg-turbo, python3 onnx + Pillow and Chromium with your package manager"
fi

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ! -e "$root/third_party/onnxruntime/libonnxruntime.so.1" ] && [ -z "${ONNXRUNTIME_SHARED_LIBRARY_PATH:-}" ] &&
  ! command -v npm >/dev/null; then
  missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

cmd=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  give_up "missing ${missing[*]}; to install them run: sudo apt-get update && sudo apt-get install --no-install-recommends ${missing[*]}"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
echo "setup-deps: installing ${missing[*]} (apt-get; once)"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get update -qq >"$log" 2>&1; then
  give_up "apt-get update failed ($(grep -m1 -E '^(E|W):' "$log" || tail -n1 "$log")): ${missing[*]} not installed"
fi
if ! "${sudo[@]}" "${cmd[@]}" >>"$log" 2>&1; then
  give_up "apt-get install ${missing[*]} failed ($(grep -m1 '^E:' "$log" || tail -n1 "$log"))"
fi
echo "setup-deps: installed ${missing[*]} in $((SECONDS - start)) s"
