#!/usr/bin/env bash
# train-vs-pytorch.sh — artnet's GoMLX training step against PyTorch's on the same DeepArtNet,
# one after the other on this machine, and their ratio.
#
#   bench/train-vs-pytorch.sh                                   # b0, 128 px, batch 8 (issue 9's target)
#   bench/train-vs-pytorch.sh --variant b4 --image-size 224 --steps 1 --warmup 0   # b4: minutes per step in artnet
#   bench/train-vs-pytorch.sh --model-config configs/train.yaml # the default model's configuration
#   MODE=infer bench/train-vs-pytorch.sh                        # forward passes instead of training steps
#
# Every argument goes to `artnet bench train` (or `bench infer` with MODE=infer): --variant,
# --image-size, --batch, --model-config, --steps, --warmup, --backend. PyTorch
# (tools/torchref/bench_train.py, Debian python3-torch 1.13 eager) then runs the model of artnet's
# report — same config, batch, step and warm-up counts — with AdamW and the same loss. Both use
# THREADS threads (default 2: GOMAXPROCS for artnet, torch.set_num_threads for PyTorch). PyTorch runs
# with OMP_WAIT_POLICY=PASSIVE unless set: with OpenMP's default spin-waiting, its two threads slow
# down 10–20× as soon as anything else runs on a 2-core machine (b0: 8–38 s per step at load 3–30
# against 0.53 s idle); passive waiting gives its idle speed (0.53 s at load 5).
# ARTNET=path/to/artnet skips the build. PAIRS=n repeats the pair n times, alternating which side
# runs first, and prints every pair's ratio and the median (this VM's speed drifts ±15 % within
# minutes: one pair is one sample). Reports (JSON) are kept in OUT (default a temporary folder).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
threads=${THREADS:-2}
mode=${MODE:-train}
python=${PYTHON:-/usr/bin/python3}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

artnet=${ARTNET:-}
if [ -z "$artnet" ]; then
  artnet="$out/artnet"
  (cd "$root" && go build -o "$artnet" ./cmd/artnet)
fi

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $threads"
pairs=${PAIRS:-1}
run_artnet() {
  echo "== artnet (GoMLX) — load: $(cut -d' ' -f1-3 /proc/loadavg)"
  GOMAXPROCS=$threads "$artnet" --log-level warn bench "$mode" "$@" --json > "$out/artnet-$i.json"
  "$python" - "$out/artnet-$i.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("  %s %s, %s at %d px, batch %d: median %.4f s per step (CPU %.4f s; first %.2f s excluded), %.2f images/s, %.3f G MAC/s"
      % (r["runtime"], r["backend"], r["variant"], r["image_size"], r["batch"], r["median_seconds"],
         r["median_cpu_seconds"], r["first_seconds"], r["images_per_sec"], r["macs_per_sec"] / 1e9))
PY
}
run_torch() {
  echo "== PyTorch — load: $(cut -d' ' -f1-3 /proc/loadavg), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}"
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} "$python" "$root/tools/torchref/bench_train.py" --report "$out/artnet-1.json" --threads "$threads" --json > "$out/torch-$i.json"
  "$python" - "$out/artnet-1.json" "$out/torch-$i.json" <<'PY'
import json, sys
a, t = (json.load(open(p)) for p in sys.argv[1:3])
macs = a["macs_per_step"] / t["median_seconds"] / 1e9
print("  %s: median %.4f s per step (CPU %.4f s; first %.2f s excluded), %.2f images/s, %.3f G MAC/s"
      % (t["backend"], t["median_seconds"], t["median_cpu_seconds"], t["first_seconds"], t["images_per_sec"], macs))
PY
}
# PAIRS=n runs n pairs, the order alternating (artnet first in odd pairs, PyTorch first in even
# ones) so that a drift of the machine's speed does not favour one side; the summary gives each
# pair's ratio and their median.
for i in $(seq "$pairs"); do
  if [ $((i % 2)) = 1 ]; then run_artnet "$@"; run_torch; else run_torch; run_artnet "$@"; fi
done
"$python" - "$out" "$pairs" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, n + 1):
    a, t = (json.load(open("%s/%s-%d.json" % (out, k, i))) for k in ("artnet", "torch"))
    rows.append((a["median_seconds"] / t["median_seconds"], a["median_cpu_seconds"] / t["median_cpu_seconds"],
                 a["median_cpu_seconds"] / a["median_seconds"], t["median_cpu_seconds"] / t["median_seconds"]))
a = json.load(open("%s/artnet-1.json" % out))
for i, (w, c, ba, bt) in enumerate(rows, 1):
    print("   pair %d: %.2f× wall, %.2f× CPU time; cores busy artnet %.2f, PyTorch %.2f" % (i, w, c, ba, bt))
print("== ratio artnet / PyTorch step time: %.2f× wall, %.2f× CPU time%s  (%s, %s at %d px, batch %d, %d measured step(s); load now %s)"
      % (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows), " (medians of %d pairs)" % n if n > 1 else "",
         a["mode"], a["variant"], a["image_size"], a["batch"], len(a["step_seconds"]), " ".join(open("/proc/loadavg").read().split()[:3])))
print("   (wall time is the target; on a loaded shared machine the CPU-time ratio is the steadier figure)")
PY
echo "(reports: $out/artnet-*.json, $out/torch-*.json)"
