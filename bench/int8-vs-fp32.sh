#!/bin/bash
# int8 vs fp32 B4 (224 px) in ONNX Runtime, batch 32, in one process, paired runs.
#
#   bench/int8-vs-fp32.sh [PAIRS] [CALIBRATION_DIR] [ACTIVATIONS...]
#
# Exports the spec's B4 (random weights, export.BenchmarkB4ORT's ARTNET_EXPORT_DUMP), quantizes it
# with `artnet quantize` (32 calibration images from CALIBRATION_DIR, default ../shared/wikiart,
# else testdata/wikiart) once per activation type (default: uint8 int8), then runs
# BenchmarkB4ORT's vs/batch=32: the int8 and the fp32 model alternate, one batch-32 run each, order
# swapped every pair, 2 intra-op threads; the median of the per-pair time ratios int8/fp32 is
# printed with its inverse, the speed-up. Prints the CPU's instruction sets and the load first:
# on a shared machine only the ratio means something. Files stay in $ARTNET_BENCH_DIR (default a
# temporary folder, printed).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-8}
calib=${2:-../shared/wikiart}
shift $(( $# > 2 ? 2 : $# ))
acts=("$@")
[ ${#acts[@]} -eq 0 ] && acts=(uint8 int8)
[ -d "$calib" ] || calib=testdata/wikiart
work=${ARTNET_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
echo "files: $work"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(grep -c ^processor /proc/cpuinfo) CPUs, $(nproc) usable by this process (affinity)"
echo "instruction sets: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -x 'avx2\|fma\|avx512f\|avx512bw\|avx512_vnni\|avx_vnni\|amx_int8' | xargs)"
echo "load: $(uptime)"
go build -o "$work/artnet" ./cmd/artnet
if [ ! -s "$work/b4.onnx" ]; then
  ARTNET_EXPORT_DUMP="$work/b4.onnx" go test -run XXX -bench 'B4ORT/export' -benchtime 1x ./export/ >/dev/null
fi
for act in "${acts[@]}"; do
  "$work/artnet" quantize --model "$work/b4.onnx" --calibrate "$calib" --images 32 --activations "$act" \
    --out "$work/b4-$act.onnx" 2>&1 | tail -1
  echo "== int8 weights, $act activations vs fp32 (batch 32, $pairs pairs); load: $(uptime | sed 's/.*load/load/')"
  ARTNET_BENCH_ONNX="$work/b4-$act.onnx" ARTNET_BENCH_VS="$work/b4.onnx" \
    go test -run XXX -bench 'B4ORT/vs/batch=32$' -benchtime "${pairs}x" -timeout 60m ./export/ |
    tee "$work/vs-$act.log" | grep -E 'ms/image.*ratio|pairs:' || true
  awk '/^Benchmark.*ratio/ {for (i=1;i<=NF;i++) if ($(i+1)=="ratio") printf "%s activations: time ratio int8/fp32 %s → speed-up %.2f×\n", "'"$act"'", $i, 1/$i}' "$work/vs-$act.log"
done
echo "load after: $(uptime)"
