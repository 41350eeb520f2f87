#!/bin/bash
# Accuracy of the quantized built-in model: top-1 per task, fp32 vs int8, on WikiArt's val split.
#
#   bench/quantize-default.sh [DATA_DIR] [MODEL.onnx] [artnet quantize flags...]
#
# Quantizes MODEL (default: the built-in model, defaultmodel/artnet-default.onnx) with
# `artnet quantize`, calibrated on DATA_DIR's train split (default ../shared/wikiart; paths the
# val split lists are left out), then runs `artnet evaluate` on DATA_DIR's val split with both
# files and prints both tables and the top-1 difference per task (int8 − fp32, in points).
# Files stay in $ARTNET_BENCH_DIR (default a temporary folder, printed).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/wikiart}
model=${2:-defaultmodel/artnet-default.onnx}
shift $(( $# > 2 ? 2 : $# ))
work=${ARTNET_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
echo "files: $work"
go build -o "$work/artnet" ./cmd/artnet
"$work/artnet" quantize --model "$model" --calibrate "$data" --out "$work/int8.onnx" "$@" 2>&1 | tail -1
for m in "$model" "$work/int8.onnx"; do
  name=$(basename "$m" .onnx)
  "$work/artnet" evaluate --model "$m" --data "$data" --split val --out "$work/eval-$name" 2>&1 | grep -v 'level=INFO'
done
/usr/bin/python3 - "$work/eval-$(basename "$model" .onnx)/summary.json" "$work/eval-int8/summary.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
tb = {t["task"]: t for t in b["tasks"]}
worst = 0
for t in a["tasks"]:
    d = 100 * (tb[t["task"]]["top1"] - t["top1"])
    worst = max(worst, abs(d))
    print(f'{t["task"]:7s} top-1 fp32 {100*t["top1"]:6.2f}%  int8 {100*tb[t["task"]]["top1"]:6.2f}%  difference {d:+.2f} points ({t["samples"]} images)')
print(f"largest |difference|: {worst:.2f} points")
EOF
