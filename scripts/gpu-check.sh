#!/usr/bin/env bash
# gpu-check.sh — the GPU path of artnet, end to end, on a machine with an NVIDIA GPU:
#
#   1. builds artnet with -tags xla (GoMLX's XLA/PJRT backend);
#   2. one training step of the tiny config on xla:cuda vs the pure-Go backend: the same loss and
#      gradients (`artnet bench compare`, relative tolerance GRAD_TOL, default 1e-4, with TF32 off:
#      NVIDIA_TF32_OVERRIDE=0);
#   3. trains DeepArtNet-B4 at 224 px on xla:cuda for B4_STEPS steps (batch B4_BATCH) and prints
#      images/s (`artnet bench train`, compilation and warm-up excluded);
#   4. exports that checkpoint to ONNX and runs it in ONNX Runtime on the CPU, checking its outputs
#      against the checkpoint's GoMLX forward pass on xla:cuda (max abs difference ≤ ORT_TOL);
#   5. runs the exported B4 with `--provider cuda` and `--provider tensorrt` on ORT's GPU provider
#      libraries (see --fetch-ort-gpu: npm's ORT 1.29 core, a CPU build, plus its CUDA plugin
#      library, attached through ORT's plugin EP API by runtime/), checks the outputs against ORT's
#      CPU provider on the same batch (max abs difference of the probabilities and attention
#      ≤ ORT_TOL, default 1e-3) and prints the latency at batch 1 and images/s at batch 32.
#      TensorRT: npm's TensorRT library is not a plugin EP (no CreateEpFactories) and its core has
#      no TensorRT, so with those libraries TensorRT is reported as not run (not a failure) unless
#      REQUIRE_TRT=1; an ORT_GPU_DIR holding a TensorRT-enabled core (official GPU release) runs it.
#
# Usage:
#   scripts/gpu-check.sh                      # everything above (needs the GPU, a PJRT CUDA plugin, ORT GPU libs)
#   scripts/gpu-check.sh --cpu-only           # CI: -tags xla build, go vs go:reference step comparison, small
#                                             # train → export → ORT CPU run checked against GoMLX (< 2 min)
#   scripts/gpu-check.sh --fetch-ort-gpu [DIR]  # on a machine with npm registry access: lay out ORT's GPU
#                                             # libraries in DIR (default third_party/onnxruntime-gpu), then
#                                             # copy DIR to the GPU machine (it needs no downloads)
#
# Environment:
#   PJRT_PLUGIN_LIBRARY_PATH  folder with the PJRT CUDA plugin (e.g. JAX's jax-cuda13-pjrt 0.11.2,
#                             xla_cuda_plugin.so); searched in Python site-packages when unset.
#                             GOMLX_NO_AUTO_INSTALL=1 is set: nothing is downloaded.
#   ORT_GPU_DIR               ORT GPU libraries (default third_party/onnxruntime-gpu): libonnxruntime.so.1
#                             and libonnxruntime_providers_cuda.so (plugin EP, registered by runtime/
#                             because it lies beside the core; `--ep-lib cuda=PATH` names another).
#   REQUIRE_TRT               1: a TensorRT that cannot run fails the check
#   OUT                       work folder (default out/gpu-check)
#   B4_STEPS, B4_BATCH        B4 training benchmark (default 20 steps of 32)
#   GRAD_TOL, ORT_TOL         tolerances above
#   ARTNET_XLA                an artnet binary built with -tags xla (skips the build)
#
# Status: the CPU-only parts run in CI (with the npm GPU libraries laid out, also the plugin EP
# path's registration and fallback); the GPU parts have NOT been run — no GPU machine was
# available when this was written (README "GPU").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=gpu
case "${1:-}" in
  --cpu-only) mode=cpu ;;
  --fetch-ort-gpu) mode=fetch ;;
  "") ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "gpu-check: unknown argument $1 (want --cpu-only, --fetch-ort-gpu [DIR] or nothing)" >&2; exit 2 ;;
esac

# ONNX Runtime's GPU build, from the npm registry: the core library (ORT 1.29) of
# com.github.asus4.onnxruntime and the CUDA/TensorRT provider libraries (CUDA 13, cuDNN 9,
# TensorRT 10) of com.github.asus4.onnxruntime.linux-x64-gpu, checked by sha256.
ORT_GPU_PKG_VERSION=0.4.9
declare -A ORT_GPU_SHA256=(
  [libonnxruntime.so]=5715f06d8992ca8eeeddcce43df3a7d38f97d537052126f558e912cb312460ca
  [libonnxruntime_providers_shared.so]=c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772
  [libonnxruntime_providers_cuda.so]=56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037
  [libonnxruntime_providers_tensorrt.so]=ef6071798a339038ad66c428fb1a809cf8e499bffc3b6870e4e8bc4f4c6a6320
)
ort_gpu_dir=${ORT_GPU_DIR:-$root/third_party/onnxruntime-gpu}

fetch_ort_gpu() {
  local dest=$1 tmp
  command -v npm >/dev/null || { echo "gpu-check: npm not found" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "com.github.asus4.onnxruntime@$ORT_GPU_PKG_VERSION" \
      "com.github.asus4.onnxruntime.linux-x64-gpu@$ORT_GPU_PKG_VERSION" >/dev/null)
  mkdir -p "$tmp/core" "$tmp/gpu" "$dest"
  tar -xzf "$tmp/com.github.asus4.onnxruntime-$ORT_GPU_PKG_VERSION.tgz" -C "$tmp/core" package/Plugins/Linux/x64/libonnxruntime.so
  tar -xzf "$tmp/com.github.asus4.onnxruntime.linux-x64-gpu-$ORT_GPU_PKG_VERSION.tgz" -C "$tmp/gpu" package/Plugins/Linux/x64
  cp "$tmp/core/package/Plugins/Linux/x64/libonnxruntime.so" "$tmp/gpu/package/Plugins/Linux/x64/"
  local f got
  for f in "${!ORT_GPU_SHA256[@]}"; do
    got=$(sha256sum "$tmp/gpu/package/Plugins/Linux/x64/$f" | cut -d' ' -f1)
    if [ "$got" != "${ORT_GPU_SHA256[$f]}" ]; then
      echo "gpu-check: sha256 mismatch for $f: got $got, want ${ORT_GPU_SHA256[$f]}" >&2; exit 1
    fi
    cp "$tmp/gpu/package/Plugins/Linux/x64/$f" "$dest/.$f.tmp" && mv "$dest/.$f.tmp" "$dest/$f"
  done
  ln -sf libonnxruntime.so "$dest/libonnxruntime.so.1"
  echo "gpu-check: ONNX Runtime 1.29 GPU libraries in $dest (copy this folder to the GPU machine, or set ORT_GPU_DIR)"
}

if [ "$mode" = fetch ]; then
  fetch_ort_gpu "${2:-$ort_gpu_dir}"
  exit 0
fi

out=${OUT:-$root/out/gpu-check}
mkdir -p "$out"
export GOMLX_NO_AUTO_INSTALL=1
step() { echo; echo "== $* ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"; }

step "build with -tags xla"
artnet=${ARTNET_XLA:-$out/artnet-xla}
if [ -z "${ARTNET_XLA:-}" ]; then
  go build -tags xla -o "$artnet" ./cmd/artnet
fi
"$artnet" doctor | sed -n '/GoMLX backends/,$p'
cpu_threads=$(nproc)

if [ "$mode" = cpu ]; then
  # CI: the same commands as the GPU run, with the pure-Go backend and a small model.
  step "one training step: go vs go:reference (loss and gradients, tolerance ${GRAD_TOL:-1e-4})"
  "$artnet" bench compare --backend go --reference-backend go:reference --batch 2 --tolerance "${GRAD_TOL:-1e-4}"
  step "train the tiny config 2 steps (go), export, run in ONNX Runtime (CPU): outputs vs GoMLX"
  rm -rf "$out/tiny"
  "$artnet" --log-level warn bench train --model-config configs/train.yaml --batch 4 --steps 2 --warmup 0 --out "$out/tiny"
  "$artnet" export --checkpoint "$out/tiny" --onnx "$out/tiny.onnx"
  "$artnet" bench infer --onnx "$out/tiny.onnx" --provider cpu --reference-checkpoint "$out/tiny" --tolerance 1e-4 \
    --batch 2 --steps 3 --warmup 1 --threads "$cpu_threads"
  # The plugin EP path of step 5, as far as a machine without a GPU can go: with npm's 1.29 core,
  # --provider cuda,cpu registers the CUDA plugin beside it, which fails to load (no CUDA here), and
  # falls back to the CPU, whose outputs must match the 1.30 CPU run.
  if [ -f "$ort_gpu_dir/libonnxruntime.so.1" ] && [ -f "$ort_gpu_dir/libonnxruntime_providers_cuda.so" ]; then
    step "plugin EP path with the npm ORT 1.29 core ($ort_gpu_dir): doctor, cuda,cpu falls back to the CPU"
    "$artnet" doctor --ort-lib "$ort_gpu_dir/libonnxruntime.so.1" | sed -n '/ONNX Runtime/,/Image decoding/p' | sed '$d'
    "$artnet" bench infer --onnx "$out/tiny.onnx" --ort-lib "$ort_gpu_dir/libonnxruntime.so.1" --provider cuda,cpu \
      --reference-checkpoint "$out/tiny" --tolerance 1e-4 --batch 2 --steps 3 --warmup 1 --threads "$cpu_threads"
  else
    echo "gpu-check: no npm ORT GPU libraries in $ort_gpu_dir: plugin EP path not checked (scripts/gpu-check.sh --fetch-ort-gpu lays them out)"
  fi
  step "gpu-check --cpu-only: passed (GPU steps not run)"
  exit 0
fi

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || {
  echo "gpu-check: nvidia-smi not found: not a GPU machine (use --cpu-only)" >&2; exit 1; }
if [ -z "${PJRT_PLUGIN_LIBRARY_PATH:-}" ]; then
  plugin=$(find / -xdev \( -path /proc -o -path /sys \) -prune -o -name 'xla_cuda_plugin.so' -print 2>/dev/null | head -1 || true)
  [ -n "$plugin" ] || { echo "gpu-check: no PJRT CUDA plugin: set PJRT_PLUGIN_LIBRARY_PATH to the folder of xla_cuda_plugin.so (pip jax-cuda13-pjrt)" >&2; exit 1; }
  export PJRT_PLUGIN_LIBRARY_PATH=$(dirname "$plugin")
fi
echo "PJRT_PLUGIN_LIBRARY_PATH=$PJRT_PLUGIN_LIBRARY_PATH"

step "one training step: xla:cuda vs go (loss and gradients, tolerance ${GRAD_TOL:-1e-4}, TF32 off)"
NVIDIA_TF32_OVERRIDE=0 "$artnet" bench compare --backend xla:cuda --reference-backend go --batch 4 --tolerance "${GRAD_TOL:-1e-4}"

step "train B4 at 224 px on xla:cuda: ${B4_STEPS:-20} steps of ${B4_BATCH:-32}"
rm -rf "$out/b4"
"$artnet" --log-level warn bench train --variant b4 --image-size 224 --batch "${B4_BATCH:-32}" \
  --steps "${B4_STEPS:-20}" --warmup 2 --backend xla:cuda --out "$out/b4"

step "export B4 to ONNX, run it in ONNX Runtime on the CPU"
"$artnet" export --checkpoint "$out/b4" --onnx "$out/b4.onnx"
"$artnet" bench infer --onnx "$out/b4.onnx" --provider cpu --batch 1 --steps 10 --warmup 2 --threads "$cpu_threads" \
  --reference-checkpoint "$out/b4" --backend xla:cuda --tolerance "${ORT_TOL:-1e-3}"

# ORT's GPU providers need CUDA 13, cuDNN 9 and TensorRT 10 on the loader path: add the folders
# where they are found (system CUDA, pip's nvidia-* wheels, e.g. those JAX brought).
[ -f "$ort_gpu_dir/libonnxruntime_providers_cuda.so" ] || {
  echo "gpu-check: no ORT GPU libraries in $ort_gpu_dir: run scripts/gpu-check.sh --fetch-ort-gpu on a machine with npm, copy the folder here (or set ORT_GPU_DIR)" >&2; exit 1; }
libdirs=$(find / -xdev \( -path /proc -o -path /sys \) -prune -o \
  \( -name 'libcudart.so.13*' -o -name 'libcublas.so.13*' -o -name 'libcudnn.so.9*' -o -name 'libnvinfer.so.10*' -o -name 'libcufft.so.12*' -o -name 'libcurand.so.10*' \) \
  -print 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: || true)
export LD_LIBRARY_PATH="$ort_gpu_dir${libdirs:+:$libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
ort_core="$ort_gpu_dir/libonnxruntime.so.1"
step "ONNX Runtime $ort_core: providers and EP devices"
"$artnet" doctor --ort-lib "$ort_core" | sed -n '/ONNX Runtime/,/Image decoding/p' | sed '$d'
ort=(--onnx "$out/b4.onnx" --ort-lib "$ort_core" --reference-provider cpu --tolerance "${ORT_TOL:-1e-3}")
trt_note=""
for p in cuda tensorrt; do
  step "ONNX Runtime --provider $p: batch 1 latency, outputs vs CPU"
  if ! "$artnet" bench infer "${ort[@]}" --provider "$p" --trt-cache "$out/trt-cache" --batch 1 --steps 50 --warmup 5 2>"$out/infer-$p.err"; then
    cat "$out/infer-$p.err" >&2
    if [ "$p" = tensorrt ] && [ "${REQUIRE_TRT:-0}" != 1 ]; then
      trt_note="tensorrt NOT run: $(tail -1 "$out/infer-$p.err")"
      echo "gpu-check: $trt_note (REQUIRE_TRT=1 makes this fatal)"
      continue
    fi
    exit 1
  fi
  cat "$out/infer-$p.err" >&2
  step "ONNX Runtime --provider $p: batch 32 images/s, outputs vs CPU"
  "$artnet" bench infer "${ort[@]}" --provider "$p" --trt-cache "$out/trt-cache" --batch 32 --steps 10 --warmup 2
done
[ -z "$trt_note" ] || echo "gpu-check: $trt_note"
step "gpu-check: passed"
