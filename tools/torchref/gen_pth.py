#!/usr/bin/python3
"""Generate the PyTorch .pth fixtures of artnet's weight import (testdata/torchref/pth/).

PyTorch's own files, written by torch.save exactly as torchvision and timm write the weights a
user finds in ~/.cache/torch/hub/checkpoints/ (a zip archive: data.pkl, the pickled state dict,
and one data/<key> record per storage):

  tv_tiny.pth             torchvision EfficientNet state dict (features.*, classifier.*; an
                          OrderedDict of float32 tensors, BatchNorm num_batches_tracked int64),
                          the spec.Tiny() backbone: efficientnet_b0 config at width 0.25, depth
                          0.25, first 4 stages, head conv 64; classifier of 10 classes (small)
  tv_tiny_outputs.safetensors
                          input (2×3×64×64) and PyTorch's eval-mode features(input), computed in
                          float64 from the float32 weights (the Go import must match it ≤ 1e-4)
  tv_tiny_f16_wrapped.pth the same state dict in float16 inside {"state_dict": …, "epoch": …,
                          "args": argparse.Namespace(…)} (timm / Lightning training checkpoints)
  model_key.pth           {"model": {a few tensors}, "optimizer": {…}} (a plain dict, not an
                          OrderedDict) with float16, bfloat16 and float64 tensors
  views.pth               tensors that are views: a transpose (non-contiguous strides), slices
                          with storage offsets sharing one storage, an expand (stride 0)
  views_ref.safetensors   the same tensors made contiguous, as F32 (what a reader must return)
  legacy.pth              a small state dict in the pre-1.6 (non-zip) torch.save format
  wrong_shape.pth         torchvision-named stem tensors (features.0.*) whose conv has 16, not 8,
                          filters
  not_state_dict.pth      torch.save of a whole nn.Module (pickled classes), not a state dict
  list.pth                torch.save of a list of tensors
  torchscript.pt          torch.jit.save of a scripted nn.Linear (a TorchScript archive)

Run with Debian's interpreter (python3-torch 1.13, python3-torchvision 0.14), from the
repository root:

    /usr/bin/python3 tools/torchref/gen_pth.py [--out testdata/torchref/pth]

Deterministic for a given torch build (fixed seed, CPU, float64 reference pass), except
legacy.pth, whose storage keys are Python object addresses.
"""

import argparse
import argparse as _argparse
import collections
import io
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import build_features, st_bytes, tiny_config, write_atomic  # noqa: E402
from torchvision.models import efficientnet as tv_effnet  # noqa: E402


def tv_tiny(cfg, gen):
    """A torchvision EfficientNet whose .features are the spec.Tiny() backbone, with a 10-class
    classifier, fixed-seed weights and measured-then-perturbed BatchNorm statistics."""
    w0, d0 = 1.0, 1.0
    setting, _ = tv_effnet._efficientnet_conf("efficientnet_b0", width_mult=cfg["width_mult"] or w0,
                                              depth_mult=cfg["depth_mult"] or d0)
    net = tv_effnet.EfficientNet(setting[:cfg["stages"]], 0.2, stochastic_depth_prob=0.0,
                                 num_classes=10, last_channel=cfg["head_channels"])
    # build_features is gen_fixtures' backbone: the same module structure (checked by names).
    ref = build_features(cfg)
    assert [k for k, _ in ref.state_dict().items()] == [k[len("features."):] for k in net.state_dict() if k.startswith("features.")]
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (1.5 / fan_in ** 0.5))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.6 + 0.8 * torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        net.train()
        s = cfg["image_size"]
        for _ in range(3):
            net.features(torch.randn(8, 3, s, s, generator=gen))
        for m in bns:
            m.momentum = 0.1
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.05)
            m.running_var.mul_(0.8 + 0.4 * torch.rand(m.running_var.shape, generator=gen))
    net.eval()
    return net


def saved(obj, zip_format=True):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=zip_format)
    return buf.getvalue()


def jit_saved(module):
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buf)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="testdata/torchref/pth", help="output folder")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    cfg = tiny_config()
    net = tv_tiny(cfg, gen)
    s = cfg["image_size"]
    x = torch.randn(2, 3, s, s, generator=gen)
    with torch.no_grad():
        feats64 = net.features.double()(x.double())
        net.float()
    sd = net.state_dict()  # an OrderedDict, as torchvision's downloads
    assert isinstance(sd, collections.OrderedDict)

    half = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in sd.items())
    wrapped = {"epoch": 7, "arch": "efficientnet_b0", "state_dict": half,
               "args": _argparse.Namespace(lr=0.1, model="efficientnet_b0")}

    small = {
        "features.0.0.weight": sd["features.0.0.weight"].half(),
        "features.0.1.weight": sd["features.0.1.weight"].bfloat16(),
        "features.0.1.bias": sd["features.0.1.bias"].double(),
        "features.0.1.num_batches_tracked": sd["features.0.1.num_batches_tracked"],
    }
    model_key = {"model": small, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]}}

    base = torch.arange(60, dtype=torch.float32).reshape(6, 10) / 7 - 3
    views = collections.OrderedDict([
        ("transposed", base.t()),                 # strides (1, 10)
        ("rows", base[2:5]),                      # storage offset 20, shares base's storage
        ("column", base[:, 3]),                   # offset 3, stride 10
        ("every_other", base[1::2, ::3]),         # offset 10, strides (20, 3)
        ("expanded", torch.tensor([1.5, -2.0, 0.25]).expand(4, 3)),  # stride 0
        ("base", base),
        ("scalar", torch.tensor(3.25)),
    ])
    views_ref = [(k, v.contiguous().float()) for k, v in views.items()]

    legacy = collections.OrderedDict((k, sd[k]) for k in list(sd)[:6])
    wrong = collections.OrderedDict((k, v) for k, v in sd.items() if k.startswith("features.0."))
    wrong["features.0.0.weight"] = torch.randn(16, 3, 3, 3, generator=gen)

    meta = {"generator": "tools/torchref/gen_pth.py", "torch": torch.__version__, "seed": str(args.seed)}
    files = {
        "tv_tiny.pth": saved(sd),
        "tv_tiny_outputs.safetensors": st_bytes([("input", x), ("features", feats64)], meta),
        "tv_tiny_f16_wrapped.pth": saved(wrapped),
        "model_key.pth": saved(model_key),
        "views.pth": saved(views),
        "views_ref.safetensors": st_bytes(views_ref, meta),
        "legacy.pth": saved(legacy, zip_format=False),
        "wrong_shape.pth": saved(wrong),
        "not_state_dict.pth": saved(nn.Sequential(nn.Linear(2, 2), nn.ReLU())),
        "list.pth": saved([torch.ones(2), torch.zeros(3)]),
        "torchscript.pt": jit_saved(nn.Linear(2, 2)),
    }
    lines = ["# PyTorch torch.save fixtures (weight import)\n",
             "Generated by `/usr/bin/python3 tools/torchref/gen_pth.py` (torch %s, seed %d). Do not edit;"
             " rerun the script. What each file holds: the script's docstring.\n" % (torch.__version__, args.seed),
             "| file | bytes |", "|---|---|"]
    for name, data in files.items():
        write_atomic(os.path.join(args.out, name), data)
        print("%-30s %8d bytes" % (name, len(data)))
        lines.append("| `%s` | %d |" % (name, len(data)))
    write_atomic(os.path.join(args.out, "README.md"), ("\n".join(lines) + "\n").encode())
    print("%d tensors in tv_tiny.pth; features output %s" % (len(sd), tuple(feats64.shape)))


if __name__ == "__main__":
    sys.exit(main())
