#!/usr/bin/env bash
# JPEG preprocessing, artnet (Go) side by side with Pillow on the same image and machine:
# decode → resize shorter side 256 (Pillow BILINEAR) → centre crop 224 → normalize.
#
#   bench/decode-vs-pil.sh [IMAGE.jpg] [ROUNDS]
#
# IMAGE defaults to ../shared/paintings/van-gogh_the-starry-night.jpg (752×600) when it
# exists, else testdata's copy. Each round runs the Go benchmark (libjpeg-turbo, libjpeg-turbo
# with draft, image/jpeg) and then the Pillow loop (full, draft), so load changes hit both
# sides alike; wall and CPU time per image are printed, and the Go side also prints the
# difference of its final tensor from Pillow's (max/mean in 8-bit levels, vs full and draft).
# Needs Debian python3-pil and python3-numpy (/usr/bin/python3) and libturbojpeg0.
set -euo pipefail
cd "$(dirname "$0")/.."
img=${1:-../shared/paintings/van-gogh_the-starry-night.jpg}
[ -f "$img" ] || img=testdata/paintings/van-gogh_the-starry-night.jpg
img=$(cd "$(dirname "$img")" && pwd)/$(basename "$img")
rounds=${2:-3}
ref=$(mktemp -d)
trap 'rm -rf "$ref"' EXIT
/usr/bin/python3 bench/pil_preprocess.py ref "$img" "$ref"
echo "image: $img"
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for r in $(seq "$rounds"); do
  echo "--- round $r, $(uptime | sed 's/.*load/load/')"
  ARTNET_BENCH_IMAGE=$img ARTNET_PIL_REF=$ref go test ./preprocess -run '^$' \
    -bench 'PreprocessJPEG' -benchtime 200x -count 1 | grep '^Benchmark'
  /usr/bin/python3 bench/pil_preprocess.py time "$img" 200
done
echo "--- end, $(uptime | sed 's/.*load/load/')"
