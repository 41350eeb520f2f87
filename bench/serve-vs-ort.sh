#!/usr/bin/env bash
# Served throughput against the in-process ONNX Runtime ceiling (issues 11 and 21), paired:
# each round runs, back to back, POST /v1/predict with --batch 32 at concurrency 64 three ways —
# "default": `artnet serve`'s defaults (full-size JPEG decoding, ORT's threads spin-waiting);
# "nospin": --ort-spin=false; "draft": --jpeg-draft --ort-spin=false — and ORT alone at batch 32
# on the preprocessed tensor (spinning on, then off), with the same number of images, so a load
# change hits all alike. The ceiling is the faster of ORT's two runs. Prints per round the
# ratios served/ceiling by wall clock and the CPU time per image of each, and what CPU
# accounting predicts when the model keeps every core busy: ORT/(ORT + x) for x = artnet's
# drafted decoding and preprocessing, and x = the JPEG's entropy decoding alone (libjpeg-turbo at
# 1/8 scale: what any decoder must do, so no decoder gets the ratio above that figure but by
# the ceiling's own run-to-run spread).
#
#   bench/serve-vs-ort.sh MODEL.onnx [IMAGE.jpg] [ROUNDS] [IMAGES]
#
# MODEL: e.g. B4 at 224 px: `ARTNET_EXPORT_DUMP=/tmp/b4.onnx go test ./export -run XXX -bench
# B4ORT/open -benchtime 1x`. IMAGE defaults to The Starry Night (752×600). ORT gets 2 intra-op
# threads (ARTNET_BENCH_THREADS to change). Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$(realpath "$1")
img=${2:-../shared/paintings/van-gogh_the-starry-night.jpg}
[ -f "$img" ] || img=testdata/paintings/van-gogh_the-starry-night.jpg
img=$(realpath "$img")
rounds=${3:-3}
n=${4:-384}
bin=$(mktemp -d)/server.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./server
go test -c -o "$(dirname "$bin")/preprocess.test" ./preprocess
export ARTNET_BENCH_MODEL=$model ARTNET_BENCH_IMAGE=$img ARTNET_BENCH_THREADS=${ARTNET_BENCH_THREADS:-2}
echo "model: $model"
echo "image: $img ($(/usr/bin/python3 -c 'import sys;from PIL import Image;print("%dx%d"%Image.open(sys.argv[1]).size)' "$img" 2>/dev/null || echo '?'))"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
field() { awk -v k="$1" '{for(i=2;i<=NF;i++) if($i==k) print $(i-1)}'; }
(cd server
for r in $(seq "$rounds"); do
  echo "--- round $r, $(uptime | sed 's/.*load/load/')"
  # served: artnet serve's defaults; spin-waiting off (NoSpin); --jpeg-draft too. Then the
  # ceiling, spinning and not.
  default=$("$bin" -test.run '^$' -test.bench 'Serve/batch=32/conc=64$' -test.benchtime "${n}x" | grep '^Benchmark')
  nospin=$(ARTNET_BENCH_NOSPIN=1 "$bin" -test.run '^$' -test.bench 'Serve/batch=32/conc=64$' -test.benchtime "${n}x" | grep '^Benchmark')
  draft=$(ARTNET_BENCH_NOSPIN=1 ARTNET_BENCH_DRAFT=1 "$bin" -test.run '^$' -test.bench 'Serve/batch=32/conc=64$' -test.benchtime "${n}x" | grep '^Benchmark')
  ort=$("$bin" -test.run '^$' -test.bench 'ORTBatch32' -test.benchtime "$((n / 32))x" | grep '^Benchmark')
  ortns=$(ARTNET_BENCH_NOSPIN=1 "$bin" -test.run '^$' -test.bench 'ORTBatch32' -test.benchtime "$((n / 32))x" | grep '^Benchmark')
  ref=$ort
  if awk -v a="$(echo "$ortns" | field img/s)" -v b="$(echo "$ort" | field img/s)" 'BEGIN{exit !(a > b)}'; then ref=$ortns; fi
  printf 'ceiling ORT batch 32: %s img/s spinning, %s img/s not\n' "$(echo "$ort" | field img/s)" "$(echo "$ortns" | field img/s)"
  # The per-image CPU of decoding and preprocessing alone (as served with --jpeg-draft): with
  # the model using every core, served/ceiling cannot exceed ORT / (ORT + this).
  pre=$(ARTNET_BENCH_DRAFT=1 "$bin" -test.run '^$' -test.bench 'DecodePreprocess' -test.benchtime "${n}x" | grep '^Benchmark' | field cpu-ms/op)
  # libjpeg-turbo at 1/8 scale: the file's entropy decoding, which no JPEG decoder avoids.
  floor=$("$(dirname "$bin")/preprocess.test" -test.run '^$' -test.bench 'JPEGDecodeFloor' -test.benchtime "${n}x" | grep '^Benchmark' | field cpu-ms/op)
  for v in default nospin draft; do
    line=${!v}
    c=$(echo "$ref" | field img/s)
    s=$(echo "$line" | field req/s)
    printf '%-7s served %6.1f img/s = %5.1f %% of ORT %6.1f img/s; cpu-ms/img served %s vs ORT %s; imgs/run %s\n' \
      "$v" "$s" "$(awk -v s="$s" -v c="$c" 'BEGIN{print 100*s/c}')" "$c" "$(echo "$line" | field cpu-ms/req)" "$(echo "$ref" | field cpu-ms/img)" "$(echo "$line" | field imgs/run)"
  done
  o=$(echo "$ortns" | field cpu-ms/img)
  printf 'cpu    ORT alone %s cpu-ms/img; ORT/(ORT + decode+preprocess (draft) %s) = %5.1f %%; ORT/(ORT + entropy decoding alone %s) = %5.1f %%\n' \
    "$o" "$pre" "$(awk -v o="$o" -v p="$pre" 'BEGIN{print 100*o/(o+p)}')" "$floor" "$(awk -v o="$o" -v p="$floor" 'BEGIN{print 100*o/(o+p)}')"
done
echo "--- end, $(uptime | sed 's/.*load/load/')")
