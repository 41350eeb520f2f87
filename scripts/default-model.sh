#!/usr/bin/env bash
# Makes the built-in default model from a finished training run, as docs/results-wikiart.md
# describes: export the run's best checkpoint to ONNX, calibrate its confidences (a temperature
# per task fitted on training images), evaluate it on both data roots, predict the eight
# paintings, and install it as defaultmodel/artnet-default.onnx.
#   scripts/default-model.sh [RUN_DIR]        (default out/wikiart16; from the repository root)
# Needs bin/artnet (make build), ONNX Runtime (make ort), ../shared/wikiart and ../shared/wikiart-extra.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-out/wikiart16}
data=(--data ../shared/wikiart --data ../shared/wikiart-extra)
ckpt=$(ls -d "$run"/phase3/best "$run"/phase2/best "$run"/phase1/best 2>/dev/null | head -1)
[ -n "$ckpt" ] || { echo "default-model: no phase*/best checkpoint under $run" >&2; exit 1; }
echo "default-model: checkpoint $ckpt"
bin/artnet export --checkpoint "$ckpt" --onnx "$run/model.onnx"
bin/artnet evaluate --model "$run/model.onnx" "${data[@]}" --out "$run/eval-uncalibrated"
bin/artnet calibrate --model "$run/model.onnx" "${data[@]}" --fit-images 4000 --out "$run/model-calibrated.onnx" | tee "$run/calibration.md"
bin/artnet evaluate --model "$run/model-calibrated.onnx" "${data[@]}" --out "$run/eval"
paintings=(testdata/paintings/*.jpg)
[ -d ../shared/paintings ] && paintings+=(../shared/paintings/*)
bin/artnet predict --model "$run/model-calibrated.onnx" --topk 3 "${paintings[@]}" | tee "$run/paintings.txt"
cp "$run/model-calibrated.onnx" defaultmodel/artnet-default.onnx
echo "default-model: installed defaultmodel/artnet-default.onnx ($(stat -c %s defaultmodel/artnet-default.onnx) bytes); rebuild bin/artnet to embed it"
