#!/usr/bin/python3
"""PyTorch reference timing of DeepArtNet, for bench/train-vs-pytorch.sh.

Times the same model as `artnet bench train|infer` in PyTorch eager mode (Debian python3-torch
1.13, torchvision 0.14): the DeepArtNet of gen_fixtures.py (torchvision's EfficientNet code for
the backbone) built from artnet's spec.Config JSON — read from an `artnet bench ... --json`
report (its "config", "batch" and "mode"), or from --config — trained with AdamW on random
images and labels with the trainer's loss: focal loss (gamma 2) per task, weighted by learned
uncertainties (sum of exp(-s_k) * L_k + s_k). The first step and --warmup more are excluded.

On a GPU (--device cuda; scripts/gpu-check.sh runs it with the GPU machine's PyTorch 2.11 and
torchvision 0.26, whose EfficientNet code is the same): every step ends with
torch.cuda.synchronize(), cudnn.benchmark is on (its autotuning falls in the excluded steps, as
XLA's does in artnet's first step), TF32 is left at PyTorch's defaults (reported), --amp bf16 runs
the forward pass and loss under torch.autocast(bfloat16) (weights and AdamW stay fp32), the batch
is copied from the host in every step (as artnet's trainer does), and the report adds the device
name and the peak memory PyTorch allocated and reserved.

    /usr/bin/python3 tools/torchref/bench_train.py --report artnet.json [--threads 2] [--json]
    /usr/bin/python3 tools/torchref/bench_train.py --config model.json --batch 8 --mode train
    python3 tools/torchref/bench_train.py --report b4.json --device cuda --amp bf16 --json
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import TASKS, DeepArtNet  # noqa: E402


def focal(logits, labels, gamma=2.0):
    logp = F.log_softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


def load_avg():
    try:
        return [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        return [0.0, 0.0, 0.0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", help="an `artnet bench ... --json` report: model, batch, mode, steps")
    ap.add_argument("--config", help="spec.Config JSON (instead of --report)")
    ap.add_argument("--batch", type=int, help="default: the report's, else 8")
    ap.add_argument("--mode", choices=["train", "infer"], help="default: the report's, else train")
    ap.add_argument("--steps", type=int, help="measured steps (default: the report's, else 3)")
    ap.add_argument("--warmup", type=int, help="steps after the first also excluded (default: the report's, else 1)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--amp", choices=["none", "bf16"], default="none", help="bf16: torch.autocast(bfloat16) for forward and loss")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_train.py: --device %s: torch %s sees no CUDA device" % (a.device, torch.__version__))
    if a.amp == "bf16" and dev.type == "cpu" and not hasattr(torch, "autocast"):
        sys.exit("bench_train.py: --amp bf16: torch %s has no torch.autocast" % torch.__version__)
    rep = {}
    if a.report:
        with open(a.report) as f:
            rep = json.load(f)
        cfg = rep["config"]
    elif a.config:
        with open(a.config) as f:
            cfg = json.load(f)
    else:
        ap.error("give --report or --config")
    batch = a.batch or rep.get("batch") or 8
    mode = a.mode or rep.get("mode") or "train"
    steps = a.steps or len(rep.get("step_seconds") or []) or 3
    warmup = a.warmup if a.warmup is not None else rep.get("warmup", 1)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = DeepArtNet(cfg).to(dev)
    s = cfg["image_size"]
    # The batch stays on the host and is copied to the device in every step, as artnet's trainer
    # feeds each step's batch from the host (19 MB for B4 at 224 px, batch 32).
    x_host = torch.randn(batch, 3, s, s)
    labels_host = {t: torch.randint(0, len(cfg["classes"][t]), (batch,)) for t in TASKS}
    log_var = torch.nn.Parameter(torch.zeros(len(TASKS), device=dev))
    opt = torch.optim.AdamW(list(model.parameters()) + [log_var], lr=a.lr, weight_decay=1e-4)

    def autocast():
        if a.amp == "bf16":
            return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def train_step():
        x = x_host.to(dev)
        labels = {t: v.to(dev) for t, v in labels_host.items()}
        with autocast():
            out = model(x)
            loss = sum(torch.exp(-log_var[k]) * focal(out[t + "_logits"].float(), labels[t]) + log_var[k] for k, t in enumerate(TASKS))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        return float(loss)

    def infer_step():
        with torch.no_grad(), autocast():
            model(x_host.to(dev))
        sync()
        return 0.0

    if mode == "train":
        model.train()
        step = train_step
    else:
        model.eval()
        step = infer_step
    before = load_avg()
    times, cpus, loss = [], [], 0.0
    for i in range(1 + warmup + steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)  # all threads of the process
    measured = times[1 + warmup:]
    med = statistics.median(measured)
    med_cpu = statistics.median(cpus[1 + warmup:])
    if dev.type == "cuda":
        backend = "torch %s eager, %s (%s)%s" % (torch.__version__, a.device, torch.cuda.get_device_name(dev),
                                                 ", bf16 autocast" if a.amp == "bf16" else ", fp32")
    else:
        backend = "torch %s eager, %d threads%s" % (torch.__version__, a.threads, ", bf16 autocast" if a.amp == "bf16" else "")
    r = {
        "mode": mode, "runtime": "pytorch", "backend": backend, "device": a.device, "amp": a.amp,
        "variant": cfg["variant"], "image_size": s, "batch": batch,
        "first_seconds": times[0], "warmup": warmup, "step_seconds": measured,
        "median_seconds": med, "mean_seconds": statistics.mean(measured), "images_per_sec": batch / med,
        "step_cpu_seconds": cpus[1 + warmup:], "median_cpu_seconds": med_cpu,
        "loss": loss, "machine": {"load_before": before, "load_after": load_avg()},
    }
    if dev.type == "cuda":
        r["gpu"] = {
            "name": torch.cuda.get_device_name(dev),
            "peak_allocated_bytes": torch.cuda.max_memory_allocated(dev),
            "peak_reserved_bytes": torch.cuda.max_memory_reserved(dev),
            "cudnn_benchmark": True,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        }
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        what = "training step" if mode == "train" else "inference"
        print("%s, %s, DeepArtNet %s at %d px, batch %d" % (what, r["backend"], cfg["variant"], s, batch))
        print("  first step %.3f s (excluded), %d warm-up excluded, %d measured" % (times[0], warmup, len(measured)))
        print("  step time: median %.4f s, mean %.4f s (min %.4f, max %.4f)" % (med, r["mean_seconds"], min(measured), max(measured)))
        print("  images/s: %.2f" % r["images_per_sec"])
        print("  CPU time per step: median %.4f s (all threads)" % med_cpu)
        if "gpu" in r:
            print("  GPU peak memory: %.2f GiB allocated, %.2f GiB reserved" % (
                r["gpu"]["peak_allocated_bytes"] / 2**30, r["gpu"]["peak_reserved_bytes"] / 2**30))
        print("  load average %.2f %.2f %.2f before, %.2f %.2f %.2f after" % tuple(before + r["machine"]["load_after"]))


if __name__ == "__main__":
    main()
