#!/usr/bin/env bash
# gpu-check.sh — the GPU path of artnet, measured in one command on the GPU machine.
#
# THE STANDING RULE (README "GPU"): the first thing to do when a GPU machine is available is
# scripts/gpu-pack.sh here (its --dry-run runs this script's non-CUDA parts on the pack), then ONE
# run of this script there — device run, carry ["gpu-pack"], timeout_s 480, command:
#     scripts/gpu-check.sh
# — and the figures of $OUT/summary.md go into the README's GPU table with the device name; the
# README's "unverified" wording goes only when they are there.
#
# The GPU machine has no Go and nothing to download (../shared/notes/gpu-device.md): this script
# builds nothing. It unpacks gpu-pack/ (made by scripts/gpu-pack.sh: the stripped -tags xla,noblas
# artnet, ONNX Runtime 1.30's CPU core, configs, images; sizes and sha256 checked against its
# MANIFEST) into a temporary folder and finds the rest on the image: Python 3.12 at
# /opt/torch/.venv (PyTorch 2.11 + CUDA 13, torchvision 0.26, JAX 0.11.2), the PJRT CUDA plugin
# of jax-cuda13-pjrt (`xla_cuda_plugin.so` under site-packages/jax_plugins, loaded by absolute
# path — GoMLX's PJRT_PLUGIN_LIBRARY_PATH search only finds files named pjrt_c_api_<name>_plugin.so,
# so PJRT_PLUGIN_LIBRARY_PATH is set to its folder for the record only), NVIDIA's CUDA libraries
# as wheels (site-packages/nvidia/*/lib → LD_LIBRARY_PATH, libdevice/ptxas → XLA_FLAGS).
#
# Stage 1 — GoMLX on the GPU (about 6 minutes; each part has a time limit and the whole a budget,
# BUDGET_S (420 s), after which the remaining parts are reported as not run; so timeout_s 480 leaves
# a warm machine and minutes for a rerun of some parts: ONLY=artnet-bf16,torch-bf16 …):
#   a. one training step of the tiny config on xla:cuda vs the `go` backend: loss and every
#      gradient within GRAD_TOL (default 1e-3 relative, normwise; TF32 asked off with
#      NVIDIA_TF32_OVERRIDE=0, though XLA's own Triton GEMMs may still use it at DEFAULT precision);
#   b. DeepArtNet-B4, 224 px, batch 32, fp32: training steps/s on xla:cuda after warm-up, the
#      first step (XLA compilation included), peak GPU memory (nvidia-smi sampled every 0.2 s, the
#      XLA allocator with preallocation off: backend option nopreallocate);
#   c. the same step in PyTorch 2.11 on the same GPU (tools/torchref/bench_train.py: the
#      independent DeepArtNet built with torchvision's EfficientNet code, AdamW, the same loss),
#      fp32; the ratio is the figure;
#   d. export of that B4 checkpoint to ONNX; ONNX Runtime (CPU, all cores) vs the checkpoint's
#      GoMLX forward on xla:cuda, largest output difference ≤ ORT_TOL (default 1e-3); the three
#      paintings predicted with it (decode + ORT path);
#   e. bf16: when this binary's `bench train` has --precision (the recipe's train.precision: bf16,
#      XLA only), B4 again with --precision bf16; PyTorch with bf16 autocast always. Otherwise the
#      summary says why artnet's bf16 did not run (no recipe bf16, or no bench flag for it).
# Stage 2 — ONNX Runtime's CUDA provider: only when ORT_GPU_DIR (default gpu-pack/ort-gpu, then
#   third_party/onnxruntime-gpu) holds libonnxruntime.so.1 and libonnxruntime_providers_cuda.so
#   (--fetch-ort-gpu lays them out on a machine with npm). Left out by default, and the summary
#   says why: the provider library is 230 MB (164 MB xz), so it cannot travel with one command
#   (64 MiB); it needs 4–5 more commands on a kept machine, more than the 15 minutes allow after
#   stage 1. B4 latency at batch 1 and images/s at batch 32 on CUDA vs CPU, outputs ≤ ORT_TOL.
#
# Files in $OUT (never more than 8): summary.md (the figures, as a table for the README),
# log.txt (everything printed), compare.json, artnet-fp32.json, artnet-bf16.json, torch.json
# (fp32 and bf16), ort.json (ORT CPU vs GoMLX GPU), gpu-mem.csv (time, MiB used, % busy).
#
# Usage:
#   scripts/gpu-check.sh                 # on the GPU machine (needs gpu-pack/ carried with it)
#   scripts/gpu-check.sh --dry-run       # here, after scripts/gpu-pack.sh (which calls it): the same
#                                        # steps on the packed binary without CUDA — `go` stands in
#                                        # for xla:cuda (vs go:reference), a b0 at 64 px for B4,
#                                        # PyTorch on the CPU when Debian's python3-torch is installed
#   scripts/gpu-check.sh --cpu-only      # scripts/gpu-pack.sh, then --dry-run: the same as
#                                        # scripts/gpu-pack.sh --dry-run (kept for old callers)
#   scripts/gpu-check.sh --fetch-ort-gpu [DIR]  # with npm: ORT 1.29's GPU libraries (sha256-checked)
#                                        # into DIR (default third_party/onnxruntime-gpu), for stage 2
#
# Environment: ARTNET_PACK (default gpu-pack), OUT (default out/gpu-check, out/gpu-dry-run),
#   PYTHON (default /opt/torch/.venv/bin/python3 there, /usr/bin/python3 here), BUDGET_S (420),
#   ONLY (comma-separated part names: run only those, e.g. for a rerun),
#   GRAD_TOL, ORT_TOL, B4_STEPS (20), B4_WARMUP (3), B4_BATCH (32), ORT_GPU_DIR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=gpu
case "${1:-}" in
  --dry-run) mode=dry ;;
  --cpu-only) mode=dry; PACK=${ARTNET_PACK:-$root/gpu-pack} "$root/scripts/gpu-pack.sh" ;;
  --fetch-ort-gpu) mode=fetch ;;
  "") ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "gpu-check: unknown argument $1 (want --dry-run, --cpu-only, --fetch-ort-gpu [DIR] or nothing)" >&2; exit 2 ;;
esac
die() { echo "gpu-check: $*" >&2; exit 1; }

# ONNX Runtime's GPU build, from the npm registry (stage 2): the core library (ORT 1.29) of
# com.github.asus4.onnxruntime and the CUDA provider library (CUDA 13, cuDNN 9) of
# com.github.asus4.onnxruntime.linux-x64-gpu, checked by sha256.
ORT_GPU_PKG_VERSION=0.4.9
declare -A ORT_GPU_SHA256=(
  [libonnxruntime.so]=5715f06d8992ca8eeeddcce43df3a7d38f97d537052126f558e912cb312460ca
  [libonnxruntime_providers_shared.so]=c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772
  [libonnxruntime_providers_cuda.so]=56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037
)
if [ "$mode" = fetch ]; then
  dest=${2:-$root/third_party/onnxruntime-gpu}
  command -v npm >/dev/null || die "npm not found"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "com.github.asus4.onnxruntime@$ORT_GPU_PKG_VERSION" \
      "com.github.asus4.onnxruntime.linux-x64-gpu@$ORT_GPU_PKG_VERSION" >/dev/null)
  mkdir -p "$tmp/core" "$tmp/gpu" "$dest"
  tar -xzf "$tmp/com.github.asus4.onnxruntime-$ORT_GPU_PKG_VERSION.tgz" -C "$tmp/core" package/Plugins/Linux/x64/libonnxruntime.so
  tar -xzf "$tmp/com.github.asus4.onnxruntime.linux-x64-gpu-$ORT_GPU_PKG_VERSION.tgz" -C "$tmp/gpu" package/Plugins/Linux/x64
  cp "$tmp/core/package/Plugins/Linux/x64/libonnxruntime.so" "$tmp/gpu/package/Plugins/Linux/x64/"
  for f in "${!ORT_GPU_SHA256[@]}"; do
    got=$(sha256sum "$tmp/gpu/package/Plugins/Linux/x64/$f" | cut -d' ' -f1)
    [ "$got" = "${ORT_GPU_SHA256[$f]}" ] || die "sha256 mismatch for $f: got $got, want ${ORT_GPU_SHA256[$f]}"
    cp "$tmp/gpu/package/Plugins/Linux/x64/$f" "$dest/.$f.tmp" && mv "$dest/.$f.tmp" "$dest/$f"
  done
  ln -sf libonnxruntime.so "$dest/libonnxruntime.so.1"
  echo "gpu-check: ONNX Runtime 1.29 GPU libraries in $dest (stage 2; 230 MB: see this script's header)"
  exit 0
fi

pack=${ARTNET_PACK:-$root/gpu-pack}
[ -f "$pack/MANIFEST" ] || die "no pack in $pack: run scripts/gpu-pack.sh on the development machine first and carry gpu-pack"
if [ "$mode" = gpu ]; then out=${OUT:-$root/out/gpu-check}; else out=${OUT:-$root/out/gpu-dry-run}; fi
mkdir -p "$out"
outputs="log.txt summary.md compare.json artnet-fp32.json artnet-bf16.json torch.json ort.json gpu-mem.csv"
for f in $outputs; do rm -f "$out/$f"; done
work=$(mktemp -d "${TMPDIR:-/tmp}/artnet-gpu.XXXXXX")
sampler=""
tee_pid=""
cleanup() {
  [ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
  rm -rf "$work"
  # Let tee write the last lines to log.txt before the command returns (the device collects $OUT then).
  if [ -n "$tee_pid" ]; then exec >&- 2>&-; wait "$tee_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
exec > >(tee -a "$out/log.txt") 2>&1
tee_pid=$!
budget=${BUDGET_S:-420}
SECONDS=0
step() { echo; echo "== $* (t=${SECONDS}s, $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"; }
# part NAME LIMIT_S [--to FILE] CMD...: runs CMD (stdout to FILE if given) with a time limit
# (never past the budget), records "NAME rc seconds start end" in $work/parts; a failure is
# reported and the check goes on to the next part.
failed=0
part() {
  local name=$1 limit=$2 to=/dev/stdout left rc t0 e0 e1
  shift 2
  if [ "$1" = --to ]; then to=$2; shift 2; fi
  if [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$name,"* ]]; then
    echo "gpu-check: $name not run (ONLY=$ONLY)"
    return 0
  fi
  left=$((budget - SECONDS))
  if [ "$left" -lt 20 ]; then
    echo "gpu-check: $name NOT run: budget of ${budget}s spent"
    echo "$name skipped 0 0 0" >> "$work/parts"
    return 0
  fi
  [ "$limit" -le "$left" ] || limit=$left
  step "$name (limit ${limit}s)"
  echo "+ $*"
  t0=$SECONDS; e0=$(date +%s.%N)
  set +e
  timeout -k 5 "$limit" "$@" > "$to"
  rc=$?
  set -e
  e1=$(date +%s.%N)
  echo "$name $rc $((SECONDS - t0)) $e0 $e1" >> "$work/parts"
  if [ "$rc" != 0 ]; then
    [ "$rc" != 124 ] || echo "gpu-check: $name: stopped at its ${limit}s limit"
    echo "gpu-check: $name FAILED (exit $rc)"
    failed=1
  fi
  return 0
}

step "gpu-check ($mode) on $(hostname), $(nproc) CPUs; pack $pack"
sed -n '1,/^files:/p' "$pack/MANIFEST" | sed '$d'
# The pack as made: every file's size and sha256.
while read -r size sum f; do
  [ -f "$pack/$f" ] || die "$pack/$f (in MANIFEST) is missing: the pack did not travel whole"
  [ "$(stat -c %s "$pack/$f")" = "$size" ] || die "$pack/$f: $(stat -c %s "$pack/$f") bytes, MANIFEST says $size"
  [ "$(sha256sum "$pack/$f" | cut -d' ' -f1)" = "$sum" ] || die "$pack/$f: sha256 differs from MANIFEST"
done < <(sed -n '/^files:/,$p' "$pack/MANIFEST" | sed 1d)
echo "gpu-check: pack verified ($(sed -n '/^files:/,$p' "$pack/MANIFEST" | sed 1d | wc -l) files)"

if [ "$mode" = gpu ]; then
  py=${PYTHON:-/opt/torch/.venv/bin/python3}
  [ -x "$py" ] || py=$(command -v python3 || true)
else
  py=${PYTHON:-/usr/bin/python3}
fi
[ -n "$py" ] && [ -x "$py" ] || die "no Python (set PYTHON)"
unxz_to() { # SRC.xz DST
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"
  else "$py" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
mkdir -p "$work/ort"
unxz_to "$pack/artnet.xz" "$work/artnet"
chmod +x "$work/artnet"
unxz_to "$pack/libonnxruntime.so.1.xz" "$work/ort/libonnxruntime.so.1"
artnet=$work/artnet
export ONNXRUNTIME_SHARED_LIBRARY_PATH=$work/ort/libonnxruntime.so.1
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
echo "ldd artnet:"; ldd "$artnet" | sed 's/^/  /'
! ldd "$artnet" | grep -q 'not found' || die "the packed artnet misses libraries here (ldd above)"
! ldd "$work/ort/libonnxruntime.so.1" | grep -q 'not found' || die "the packed libonnxruntime misses libraries here: $(ldd "$work/ort/libonnxruntime.so.1" | grep 'not found' | paste -sd' ')"
"$artnet" --version 2>/dev/null || true
cpus=$(nproc)

if [ "$mode" = gpu ]; then
  command -v nvidia-smi >/dev/null || die "nvidia-smi not found: not a GPU machine (here, use scripts/gpu-pack.sh --dry-run)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  plugin=$(find "$site/jax_plugins" -name xla_cuda_plugin.so 2>/dev/null | sort | head -1 || true)
  [ -n "$plugin" ] || die "no xla_cuda_plugin.so under $site/jax_plugins (jax-cuda13-pjrt): GoMLX cannot reach the GPU"
  export PJRT_PLUGIN_LIBRARY_PATH=$(dirname "$plugin")
  # The plugin's RPATH points at ../../nvidia/*/lib; LD_LIBRARY_PATH makes that certain.
  nvlibs=$(find "$site/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd: || true)
  export LD_LIBRARY_PATH="${nvlibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # XLA compiles to PTX: it needs libdevice and ptxas (a CUDA root: nvvm/libdevice, bin/ptxas).
  libdevice=$(find "$site/nvidia" /usr/local/cuda/ -name 'libdevice.10.bc' 2>/dev/null | head -1 || true)
  if [ -n "$libdevice" ]; then
    cuda_root=$(dirname "$(dirname "$(dirname "$libdevice")")")
    export XLA_FLAGS="--xla_gpu_cuda_data_dir=$cuda_root${XLA_FLAGS:+ $XLA_FLAGS}"
    [ ! -x "$cuda_root/bin/ptxas" ] || export PATH="$cuda_root/bin:$PATH"
  fi
  echo "python: $py ($("$py" -c 'import torch, torchvision, jax; print("torch", torch.__version__, "torchvision", torchvision.__version__, "jax", jax.__version__)' 2>&1 | tail -1))"
  echo "plugin: $plugin"; echo "XLA_FLAGS=${XLA_FLAGS:-}"; echo "ptxas: $(command -v ptxas || echo none)"
  backend="xla:$plugin,nopreallocate"
  ref_backend=go
  grad_tol=${GRAD_TOL:-1e-3}
  model=(--variant b4 --image-size 224)
  batch=${B4_BATCH:-32}
  steps=(--steps "${B4_STEPS:-20}" --warmup "${B4_WARMUP:-3}")
  torch_dev=cuda
  # GPU memory and load, every 0.2 s, for the whole run (per part in summary.md).
  ( while :; do
      echo "$(date +%s.%N),$(nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits | head -1 | tr -d ' ')"
      sleep 0.2
    done ) > "$out/gpu-mem.csv" 2>/dev/null &
  sampler=$!
else
  # No CUDA here: the pure-Go backend stands in for xla:cuda, a b0 at 64 px for B4.
  backend=go
  ref_backend=go:reference
  grad_tol=${GRAD_TOL:-1e-4}
  model=(--variant b0 --image-size 64)
  batch=2
  steps=(--steps 1 --warmup 0)
  torch_dev=cpu
fi
ort_tol=${ORT_TOL:-1e-3}

# bf16: decided by what the binary can do (bench train --precision); the configs say whether the
# recipe has it (train.precision, "bf16 on the XLA backend only").
bf16_cfg=$(grep -lE '^[[:space:]]*precision:' "$pack"/configs/*.yaml 2>/dev/null | xargs -r -n1 basename | paste -sd' ' || true)
if "$artnet" bench train --help 2>/dev/null | grep -q -- '--precision'; then
  bf16=yes; bf16_why=""
elif [ -n "$bf16_cfg" ]; then
  bf16=no
  bf16_why="the recipe has train.precision (configs: $bf16_cfg) but this artnet's bench train has no --precision flag to time it with"
else
  bf16=no
  bf16_why="this artnet has no bf16 (no train.precision in configs/*.yaml, no bench train --precision): the recipe's bf16 has not landed"
fi
echo "bf16: $bf16 ${bf16_why:+— $bf16_why}"
has_torch=yes
"$py" -c 'import torch, torchvision' 2>/dev/null || has_torch=no

# a. one step, backend under test vs reference
part compare 90 --to "$out/compare.json" env NVIDIA_TF32_OVERRIDE=0 "$artnet" bench compare --backend "$backend" \
  --reference-backend "$ref_backend" --batch 4 --tolerance "$grad_tol" --json
# b. B4 (dry: b0 64 px) fp32 training steps; the checkpoint is kept for d.
part artnet-fp32 150 --to "$out/artnet-fp32.json" "$artnet" --log-level warn bench train "${model[@]}" --batch "$batch" "${steps[@]}" \
  --backend "$backend" --out "$work/ckpt" --json
# c. PyTorch, same model, batch and step counts (from artnet's report), fp32.
# PyTorch builds its DeepArtNet from artnet's report (the spec.Config); if artnet's training step
# failed, the config comes from a one-image forward pass on the CPU (`go`), so the anchor still runs.
torch_report=$out/artnet-fp32.json
if [ "$has_torch" = yes ] && [ ! -s "$torch_report" ]; then
  torch_report=$work/config-report.json
  part torch-config 120 --to "$torch_report" "$artnet" --log-level warn bench infer "${model[@]}" --batch 1 --steps 1 \
    --warmup 0 --backend go --json
fi
torch_bench=("$py" "$root/tools/torchref/bench_train.py" --report "$torch_report" --device "$torch_dev" --threads "$cpus"
  --mode train --batch "$batch" --steps "${steps[1]}" --warmup "${steps[3]}" --json)
if [ "$has_torch" = no ]; then
  if [ "$mode" = dry ]; then
    echo "gpu-check: PyTorch parts NOT run here: $py has no torch/torchvision (apt-get install python3-torch python3-torchvision runs them)"
  else
    echo "gpu-check: PyTorch parts NOT run: $py has no torch/torchvision"; failed=1
  fi
elif [ -s "$torch_report" ]; then
  part torch-fp32 90 --to "$work/torch-fp32.json" "${torch_bench[@]}" --amp none
fi
# d. export, ORT on the CPU vs the GoMLX forward on the backend under test; predict the paintings.
if [ -d "$work/ckpt" ]; then
  part export 60 "$artnet" export --checkpoint "$work/ckpt" --onnx "$work/model.onnx"
  if [ -f "$work/model.onnx" ]; then
    part ort-vs-gomlx 90 --to "$out/ort.json" "$artnet" bench infer --onnx "$work/model.onnx" --provider cpu \
      --threads "$cpus" --reference-checkpoint "$work/ckpt" --backend "$backend" --batch 8 --steps 5 --warmup 1 --json
    part predict 30 "$artnet" predict --model "$work/model.onnx" --topk 2 "$pack"/images/*.jpg
    # Here, with npm's ORT 1.29 GPU libraries laid out (--fetch-ort-gpu): stage 2's plugin EP
    # path as far as a machine without CUDA goes — cuda,cpu registers the CUDA plugin, which
    # cannot load, and falls back to the CPU, whose outputs must match GoMLX's.
    npm_gpu=$root/third_party/onnxruntime-gpu
    if [ "$mode" = dry ] && [ -f "$npm_gpu/libonnxruntime.so.1" ] && [ -f "$npm_gpu/libonnxruntime_providers_cuda.so" ]; then
      part ort-plugin-fallback 60 "$artnet" bench infer --onnx "$work/model.onnx" --ort-lib "$npm_gpu/libonnxruntime.so.1" \
        --provider cuda,cpu --reference-checkpoint "$work/ckpt" --backend "$backend" --tolerance 1e-4 --batch 2 --steps 2 --warmup 1
    fi
  fi
fi
# e. bf16 on both sides.
if [ "$bf16" = yes ]; then
  if [ "$mode" = dry ]; then
    # The pure-Go backend may not take bf16 (the recipe targets the GPU): report, don't fail.
    f=$failed
    part artnet-bf16 120 --to "$out/artnet-bf16.json" "$artnet" --log-level warn bench train "${model[@]}" --batch "$batch" "${steps[@]}" \
      --backend "$backend" --precision bf16 --json
    [ "$failed" = "$f" ] || { echo "gpu-check: (dry run) bf16 on $backend failed: not counted, the GPU run uses xla:cuda"; failed=$f; }
  else
    part artnet-bf16 120 --to "$out/artnet-bf16.json" "$artnet" --log-level warn bench train "${model[@]}" --batch "$batch" "${steps[@]}" \
      --backend "$backend" --precision bf16 --json
  fi
fi
if [ "$has_torch" = yes ] && [ -s "$torch_report" ]; then
  part torch-bf16 60 --to "$work/torch-bf16.json" "${torch_bench[@]}" --amp bf16
fi
# Stage 2 — ORT's CUDA provider, when its libraries came along.
ort_gpu_dir=${ORT_GPU_DIR:-}
for d in "$pack/ort-gpu" "$root/third_party/onnxruntime-gpu"; do
  [ -n "$ort_gpu_dir" ] || { [ ! -f "$d/libonnxruntime_providers_cuda.so" ] || ort_gpu_dir=$d; }
done
stage2_why=""
if [ "$mode" = gpu ] && [ -n "$ort_gpu_dir" ] && [ -f "$ort_gpu_dir/libonnxruntime_providers_cuda.so" ] && [ -f "$work/model.onnx" ]; then
  ort_gpu=(--onnx "$work/model.onnx" --ort-lib "$ort_gpu_dir/libonnxruntime.so.1" --provider cuda --reference-provider cpu --tolerance "$ort_tol")
  part ort-cuda-b1 90 "$artnet" bench infer "${ort_gpu[@]}" --batch 1 --steps 50 --warmup 5
  part ort-cuda-b32 90 "$artnet" bench infer "${ort_gpu[@]}" --batch 32 --steps 10 --warmup 2
else
  stage2_why="ONNX Runtime's CUDA provider library (npm, ORT 1.29: 230 MB, 164 MB as xz) did not come along: one device command carries 64 MiB with the tree, so it needs 4–5 more commands on a kept machine — more than the 15 minutes leave after stage 1. Run it in a later lease (scripts/gpu-check.sh --fetch-ort-gpu, split, carry in pieces, cat into gpu-pack/ort-gpu)."
fi
[ -z "$sampler" ] || { kill "$sampler" 2>/dev/null || true; sampler=""; }

# torch.json: both precisions in one file (the 8-file limit).
"$py" - "$work" "$out/torch.json" <<'PY'
import json, os, sys
work, dst = sys.argv[1:3]
r = {}
for p in ("fp32", "bf16"):
    f = os.path.join(work, "torch-%s.json" % p)
    if os.path.exists(f) and os.path.getsize(f) > 0:
        try:
            r[p] = json.load(open(f))
        except ValueError as e:
            r[p] = {"error": "unreadable report: %s" % e}
if r:
    json.dump(r, open(dst, "w"), indent=2)
PY

step "summary"
"$py" - "$mode" "$out" "$work/parts" "$pack/MANIFEST" "$grad_tol" "$ort_tol" "$bf16_why" "$stage2_why" "$backend" <<'PY' || failed=1
import csv, json, os, sys
mode, out, parts_f, manifest, grad_tol, ort_tol, bf16_why, stage2_why, backend = sys.argv[1:10]
grad_tol, ort_tol = float(grad_tol), float(ort_tol)

def load(name):
    p = os.path.join(out, name)
    try:
        return json.load(open(p)) if os.path.getsize(p) > 0 else None
    except (OSError, ValueError):
        return None

parts = {}
if os.path.exists(parts_f):
    for line in open(parts_f):
        f = line.split()
        parts[f[0]] = {"rc": f[1], "secs": int(f[2]), "t0": float(f[3]), "t1": float(f[4])}
mem = []
mp = os.path.join(out, "gpu-mem.csv")
if os.path.exists(mp):
    for row in csv.reader(open(mp)):
        try:
            mem.append((float(row[0]), float(row[1]), float(row[2])))
        except (ValueError, IndexError):
            pass

def peak(name):
    p = parts.get(name)
    if not p or not mem:
        return None
    xs = [m for t, m, u in mem if p["t0"] <= t <= p["t1"]]
    return max(xs) if xs else None

def status(name):
    p = parts.get(name)
    if p is None:
        return "not run"
    return {"0": "ok", "skipped": "not run (budget)", "124": "timed out"}.get(p["rc"], "FAILED (exit %s)" % p["rc"])

cmp_, a32, a16, tor, ort = load("compare.json"), load("artnet-fp32.json"), load("artnet-bf16.json"), load("torch.json") or {}, load("ort.json")
gpu = (tor.get("fp32") or {}).get("gpu", {}).get("name") or ""
L = []
L.append("# artnet GPU check — %s" % ("GPU run" if mode == "gpu" else "dry run (no CUDA: go stands in for xla:cuda, b0 64 px for B4)"))
L.append("")
for line in open(manifest):
    if line.startswith(("commit:", "go:", "bf16:")):
        L.append("- pack " + line.strip())
L.append("- backend under test: `%s`; device: %s" % (backend, gpu or ("(see log.txt, nvidia-smi)" if mode == "gpu" else "CPU")))
L.append("")
L.append("| part | status | seconds |")
L.append("|---|---|---|")
for n in ("compare", "artnet-fp32", "torch-config", "torch-fp32", "export", "ort-vs-gomlx", "predict", "ort-plugin-fallback", "artnet-bf16", "torch-bf16", "ort-cuda-b1", "ort-cuda-b32"):
    if n in parts or n in ("compare", "artnet-fp32", "torch-fp32", "export", "ort-vs-gomlx"):
        L.append("| %s | %s | %s |" % (n, status(n), parts.get(n, {}).get("secs", "")))
L.append("")
if cmp_:
    ok = cmp_["LossRelDiff"] <= grad_tol and cmp_["GradRelDiff"] <= grad_tol
    L.append("**One training step, %s vs %s** (tiny config, batch 4): loss %.8g vs %.8g (rel %.2g), largest gradient rel diff %.2g (%s, %d variables): %s tolerance %g."
             % (cmp_["Backend"], cmp_["Reference"], cmp_["Loss"], cmp_["RefLoss"], cmp_["LossRelDiff"], cmp_["GradRelDiff"],
                cmp_["WorstVariable"], cmp_["Variables"], "within" if ok else "OUTSIDE", grad_tol))
    L.append("")

def gib(x):
    return "%.2f GiB" % (x / 1024.0) if x is not None else "—"

rows = []
for prec, a, t in (("fp32", a32, tor.get("fp32")), ("bf16", a16, tor.get("bf16"))):
    if not a and not t:
        continue
    ai = a["images_per_sec"] if a else None
    ti = t.get("images_per_sec") if t else None
    tg = (t or {}).get("gpu", {})
    rows.append("| %s | %s | %s | %s | %s | %s | %s |" % (
        prec,
        "%.1f" % ai if ai else "—",
        "%.1f" % ti if ti else "—",
        "%.2f×" % (ai / ti) if ai and ti else "—",
        "%.1f s / %.1f s" % (a["first_seconds"], t["first_seconds"]) if a and t and "first_seconds" in t else ("%.1f s / —" % a["first_seconds"] if a else "—"),
        gib(peak("artnet-" + prec)) if mode == "gpu" else "—",
        gib(tg["peak_reserved_bytes"] / 2**20) if tg.get("peak_reserved_bytes") else "—"))
if rows:
    cfg = a32 or a16
    L.append("**Training step, DeepArtNet-%s at %d px, batch %d** (%d measured steps after %d warm-up; images/s from the median step):"
             % (cfg["variant"].upper(), cfg["image_size"], cfg["batch"], len(cfg["step_seconds"]), cfg["warmup"]))
    L.append("")
    L.append("| precision | artnet images/s | PyTorch images/s | artnet / PyTorch | first step artnet / PyTorch (compile, autotune) | artnet peak GPU memory (nvidia-smi, CUDA context included) | PyTorch peak reserved |")
    L.append("|---|---|---|---|---|---|---|")
    L += rows
    L.append("")
if not a16:
    L.append("bf16 (artnet): not run — %s" % (bf16_why or status("artnet-bf16")))
    L.append("")
bad = []
if ort:
    ok = ort.get("max_abs_diff", 1e9) <= ort_tol
    if not ok:
        bad.append("ORT CPU vs GoMLX outputs differ by %.3g > %g" % (ort.get("max_abs_diff", float("nan")), ort_tol))
    L.append("**Export → ONNX Runtime (CPU, %s) vs GoMLX forward (%s)**, batch %d: largest output difference %.3g (%s tolerance %g); ORT CPU %.1f images/s (median batch %.4f s)."
             % (ort.get("backend"), ort.get("reference"), ort["batch"], ort.get("max_abs_diff", float("nan")),
                "within" if ok else "OUTSIDE", ort_tol, ort["images_per_sec"], ort["median_seconds"]))
    L.append("")
if stage2_why:
    L.append("Stage 2 (ORT CUDA provider): not run — %s" % stage2_why)
else:
    L.append("Stage 2 (ORT CUDA provider): see log.txt (ort-cuda-b1, ort-cuda-b32).")
open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")
print("\n".join(L))
if bad:
    print("gpu-check: " + "; ".join(bad))
    sys.exit(3)
PY

# What came back must fit the device's limits: at most 8 files.
n=$(find "$out" -type f | wc -l)
echo "gpu-check: $n files in $out: $(cd "$out" && ls | paste -sd' ')"
[ "$n" -le 8 ] || die "$n files in $out: the device returns at most 8"
if [ "$failed" != 0 ]; then
  step "gpu-check ($mode): FAILED parts above (figures so far in $out/summary.md)"
  exit 1
fi
step "gpu-check ($mode): passed in ${SECONDS}s"
