#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of artnet's DeepArtNet (testdata/torchref/).

Builds the model of ../shared/spec/deepartnet.md in PyTorch for artnet's spec.Tiny()
configuration, with torchvision 0.14's own EfficientNet code for the backbone, fills it with
fixed-seed, non-trivial weights and BatchNorm statistics, runs a fixed random batch of 3 images
through it in eval mode, and writes:

  tiny.safetensors           the full state dict (F32; num_batches_tracked as I64)
  backbone_only.safetensors  only the backbone.features.* tensors
  tiny_outputs.safetensors   input, style/genre/artist probabilities and logits, attention,
                             backbone features and intermediate activations (see README.md)
  config.json                the spec.Config (JSON tags of models/spec) the Go side builds
  README.md                  what is where, parameter counts, tolerances

Run with Debian's interpreter (python3-torch 1.13, python3-torchvision 0.14), from the
repository root:

    /usr/bin/python3 tools/torchref/gen_fixtures.py [--out testdata/torchref]

The output is deterministic for a given torch build (fixed seed, CPU, float64 reference pass).
"""

import argparse
import json
import math
import os
import struct
import sys
import tempfile

import torch
import torchvision
from torch import nn
from torchvision.models import efficientnet as tv_effnet

# spec.Tiny() of models/spec/spec.go. Keep in step with it: the Go fixture test
# (safetensors/fixtures_test.go) checks that config.json equals spec.Tiny().
TASKS = ["style", "genre", "artist"]
NUM_CLASSES = {"style": 27, "genre": 10, "artist": 23}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def tiny_config():
    return {
        "variant": "b0",
        "width_mult": 0.25,
        "depth_mult": 0.25,
        "stages": 4,
        "head_channels": 64,
        "image_size": 64,
        "resize_size": 72,
        "proj_dim": 32,
        "lstm_hidden": 16,
        "lstm_layers": 2,
        "attn_dim": 16,
        "head_hidden": 32,
        "dropout": 0.1,
        "drop_path": 0,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "classes": {t: ["%s_%d" % (t, i) for i in range(NUM_CLASSES[t])] for t in TASKS},
    }


# torchvision 0.14's efficientnet_bN (width, depth, dropout) — spec.Variants.
VARIANTS = {
    "b0": (1.0, 1.0, 0.2),
    "b1": (1.0, 1.1, 0.2),
    "b2": (1.1, 1.2, 0.3),
    "b3": (1.2, 1.4, 0.3),
    "b4": (1.4, 1.8, 0.4),
}


def build_features(cfg):
    """torchvision's EfficientNet .features for cfg: the first `stages` MBConv stages of
    efficientnet_bN scaled by width/depth, then the 1×1 conv block to head_channels."""
    w0, d0, dropout = VARIANTS[cfg["variant"]]
    width = cfg.get("width_mult") or w0
    depth = cfg.get("depth_mult") or d0
    setting, last_channel = tv_effnet._efficientnet_conf(
        "efficientnet_" + cfg["variant"], width_mult=width, depth_mult=depth
    )
    stages = cfg.get("stages") or 7
    setting = setting[:stages]
    head = cfg.get("head_channels") or None  # None → torchvision's 4 × last stage channels
    net = tv_effnet.EfficientNet(
        setting, dropout, stochastic_depth_prob=cfg.get("drop_path", 0.2), last_channel=head
    )
    return net.features


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.features = build_features(cfg)
        head = self.features[-1][0].out_channels
        self.proj = nn.Conv2d(head, cfg["proj_dim"], kernel_size=1, bias=True)

    def forward(self, x):
        f = self.features(x)
        return f, self.proj(f)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.lstm = nn.LSTM(
            cfg["proj_dim"], cfg["lstm_hidden"], num_layers=cfg["lstm_layers"],
            batch_first=True, bidirectional=True,
        )

    def forward(self, x):
        out, _ = self.lstm(x)
        return out


class Attention(nn.Module):
    def __init__(self, dim, attn):
        super().__init__()
        self.W = nn.Linear(dim, attn, bias=True)
        self.v = nn.Linear(attn, 1, bias=False)

    def forward(self, h):
        score = self.v(torch.tanh(self.W(h))).squeeze(-1)  # B×T
        alpha = torch.softmax(score, dim=1)
        context = torch.bmm(alpha.unsqueeze(1), h).squeeze(1)  # Σ α_t h_t
        return context, alpha, score


class DeepArtNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.backbone = Backbone(cfg)
        self.encoder = Encoder(cfg)
        d = 2 * cfg["lstm_hidden"]
        self.attention = Attention(d, cfg["attn_dim"])
        self.heads = nn.ModuleDict({
            t: nn.Sequential(
                nn.Linear(d, cfg["head_hidden"]), nn.ReLU(), nn.Dropout(cfg["dropout"]),
                nn.Linear(cfg["head_hidden"], len(cfg["classes"][t])),
            )
            for t in TASKS
        })

    def forward(self, x):
        feats, proj = self.backbone(x)
        b, c, h, w = proj.shape
        tokens = proj.flatten(2).transpose(1, 2)  # B×(H·W)×C, token t = row·W + col
        enc = self.encoder(tokens)
        context, alpha, score = self.attention(enc)
        out = {
            "backbone.features": feats,
            "backbone.proj": proj,
            "tokens": tokens,
            "encoder": enc,
            "attention_scores": score,
            "context": context,
            "attention": alpha,
        }
        for t in TASKS:
            logits = self.heads[t](context)
            out[t + "_logits"] = logits
            out[t] = torch.softmax(logits, dim=1)
        return out


def randomize(model, gen, calib_batches):
    """Non-default, fixed-seed weights; BatchNorm statistics measured on random images (so the
    activations stay in a sensible range) and then perturbed."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                # Larger gains in attention and heads: peaked (not near-uniform) attention and
                # probabilities, so that parity tests notice a wrong token order or head.
                gain = 4.5 if name.startswith(("attention.", "heads.")) else 1.5
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (gain / math.sqrt(fan_in)))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.6 + 0.8 * torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
            elif isinstance(m, nn.LSTM):
                for pname, p in m.named_parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        # Measure running statistics (cumulative average) in training mode.
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for x in calib_batches:
            model.backbone(x)
        for m in bns:
            m.momentum = 0.1
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.05)
            m.running_var.mul_(0.8 + 0.4 * torch.rand(m.running_var.shape, generator=gen))
            assert bool((m.running_var > 0).all())
    model.eval()


def st_bytes(tensors, metadata=None):
    """A safetensors file (written by hand: Debian has no python3-safetensors) of an ordered
    list of (name, tensor); float16/bfloat16 as F16/BF16, other float tensors as F32, int64 as
    I64."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name, t in tensors:
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.int64:
            dtype, raw = "I64", t.numpy().astype("<i8").tobytes()
        elif t.dtype == torch.float16:
            dtype, raw = "F16", t.numpy().astype("<f2").tobytes()
        elif t.dtype == torch.bfloat16:  # numpy has no bfloat16: write the bits
            dtype, raw = "BF16", t.view(torch.int16).numpy().astype("<i2").tobytes()
        elif t.is_floating_point():
            dtype, raw = "F32", t.to(torch.float32).numpy().astype("<f4").tobytes()
        else:
            raise SystemExit("tensor %s: unsupported dtype %s" % (name, t.dtype))
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def dtype_tensors(gen):
    """The same values as F16 and BF16, with PyTorch's own conversions back to float32: checks
    a reader's half-precision decoding against PyTorch's (normals, subnormals, ±0, ±inf, NaN,
    overflow to inf in F16, rounding)."""
    special = torch.tensor([0.0, -0.0, 1.0, -2.0, 0.1, 1 / 3, 65504.0, 65520.0, 1e5, -1e5, 6e-8, 1e-7,
                            -3e-5, 6.1e-5, 1e-40, 3e38, float("inf"), float("-inf"), float("nan")])
    x = torch.cat([special, torch.randn(45, generator=gen) * torch.logspace(-6, 4, 45)])
    return [
        ("x", x),
        ("x_f16", x.half()), ("x_f16_as_f32", x.half().float()),
        ("x_bf16", x.bfloat16()), ("x_bf16_as_f32", x.bfloat16().float()),
        ("steps", torch.tensor([7], dtype=torch.int64)),
    ]


def write_atomic(path, data):
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def nparams(module):
    return sum(p.numel() for p in module.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="testdata/torchref", help="output folder")
    ap.add_argument("--seed", type=int, default=20261128)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    cfg = tiny_config()
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = DeepArtNet(cfg)
    s = cfg["image_size"]
    calib = [torch.randn(8, 3, s, s, generator=gen) for _ in range(4)]
    randomize(model, gen, calib)
    x = torch.randn(3, 3, s, s, generator=gen)

    # Reference pass in float64 (weights and input are float32 values), so that the stored
    # outputs do not depend on PyTorch's float32 summation order; float32 pass for comparison.
    with torch.no_grad():
        out32 = model(x)
        out64 = {k: v for k, v in model.double()(x.double()).items()}
        model.float()
    diff = max(float((out32[k].double() - out64[k]).abs().max()) for k in out64)

    sd = model.state_dict()
    state = list(sd.items())
    backbone = [(k, v) for k, v in state if k.startswith("backbone.features.")]
    outputs = [("input", x)] + [(k, v) for k, v in out64.items()]
    meta = {"format": "pt", "generator": "tools/torchref/gen_fixtures.py",
            "torch": torch.__version__, "torchvision": torchvision.__version__, "seed": str(args.seed)}

    # Counts recorded in README.md.
    b0 = torchvision.models.efficientnet_b0().features
    b4 = torchvision.models.efficientnet_b4().features
    counts = {
        "efficientnet_b0().features": nparams(b0),
        "efficientnet_b4().features": nparams(b4),
        "tiny backbone.features": nparams(model.backbone.features),
        "tiny backbone (features + proj)": nparams(model.backbone),
        "tiny DeepArtNet": nparams(model),
    }
    dtypes = dtype_tensors(gen)
    assert counts["efficientnet_b0().features"] == 4007548, counts
    assert counts["efficientnet_b4().features"] == 17548616, counts
    h, w = out64["backbone.proj"].shape[2:]
    assert (h, w) == (4, 4), (h, w)  # spec.Tiny().Grid()

    files = {
        "tiny.safetensors": st_bytes(state, meta),
        "backbone_only.safetensors": st_bytes(backbone, meta),
        "tiny_outputs.safetensors": st_bytes(outputs, meta),
        "dtypes.safetensors": st_bytes(dtypes, {"generator": "tools/torchref/gen_fixtures.py"}),
        "config.json": (json.dumps(cfg, indent=2) + "\n").encode(),
    }
    for name, data in files.items():
        write_atomic(os.path.join(args.out, name), data)

    probs = {t: out64[t] for t in TASKS}
    lines = []
    lines.append("# PyTorch reference fixtures (DeepArtNet, spec.Tiny())\n")
    lines.append("Generated by `/usr/bin/python3 tools/torchref/gen_fixtures.py` (torch %s, torchvision %s,"
                 " seed %d). Do not edit; rerun the script.\n" % (torch.__version__, torchvision.__version__, args.seed))
    lines.append("| file | bytes | content |\n|---|---|---|")
    desc = {
        "tiny.safetensors": "full state dict, %d tensors (F32; `num_batches_tracked` I64 scalars), names as in the spec's table" % len(state),
        "backbone_only.safetensors": "only the %d `backbone.features.*` tensors (a 'pretrained backbone' file)" % len(backbone),
        "tiny_outputs.safetensors": "input and outputs of the eval-mode model, F32 (below)",
        "dtypes.safetensors": "64 values `x` (F32) also as F16 `x_f16` and BF16 `x_bf16`, with PyTorch's conversions"
                              " back to F32 (`x_f16_as_f32`, `x_bf16_as_f32`; specials incl. subnormals, ±inf, NaN),"
                              " and an I64 `steps`: checks a reader's half-precision decoding",
        "config.json": "the spec.Config the Go side builds (= `spec.Tiny()`)",
    }
    for name, data in files.items():
        lines.append("| `%s` | %d | %s |" % (name, len(data), desc[name]))
    lines.append("")
    lines.append("## Model\n")
    lines.append("Backbone = `torchvision.models.efficientnet.EfficientNet(_efficientnet_conf('efficientnet_b0',"
                 " width_mult=0.25, depth_mult=0.25)[0][:4], last_channel=64).features`: stem (`features.0`),"
                 " 4 MBConv stages of one block each (`features.1`…`features.4`), and the 1×1 conv block to 64"
                 " channels at `features.5` (index = stages + 1; `features.8` in the full network). Channels:"
                 " stem %d, stages %s, head %d. Input 64×64 → grid %d×%d = %d tokens." % (
                     model.backbone.features[0][0].out_channels,
                     [model.backbone.features[i][-1].out_channels for i in range(1, 5)],
                     model.backbone.features[5][0].out_channels, h, w, h * w))
    lines.append("")
    lines.append("Weights: fixed-seed random (convs/linears N(0, 1.5²/fan_in), attention and head linears"
                 " N(0, 4.5²/fan_in), biases N(0, 0.1²), LSTM N(0, 0.5²),"
                 " BatchNorm γ∈[0.6,1.4], β N(0, 0.2²)); BatchNorm running statistics measured on 32 random"
                 " images in training mode, then perturbed (mean + N(0, 0.05²), var × U[0.8,1.2]);"
                 " `num_batches_tracked` = 4.\n")
    lines.append("## tiny_outputs.safetensors\n")
    lines.append("Computed in **float64** from the float32 weights and input, stored as F32. A float32 PyTorch"
                 " pass differs from it by at most %.2e (all tensors), a guide for parity tolerances.\n" % diff)
    lines.append("| tensor | shape | what |\n|---|---|---|")
    what = {
        "input": "normalized NCHW images (N(0,1) random)",
        "backbone.features": "output of `backbone.features` (for debugging the backbone)",
        "backbone.proj": "output of the 1×1 projection",
        "tokens": "projection flattened row-major: token t = row·W + col",
        "encoder": "BiLSTM output, [forward, backward] concatenated",
        "attention_scores": "v·tanh(W·h_t + b) before the softmax",
        "context": "Σ α_t h_t",
        "attention": "α, softmax over tokens",
    }
    for t in TASKS:
        what[t + "_logits"] = "%s head logits" % t
        what[t] = "%s probabilities (softmax)" % t
    for k, v in outputs:
        lines.append("| `%s` | %s | %s |" % (k, "×".join(map(str, v.shape)), what[k]))
    lines.append("")
    lines.append("Sanity: max probability per image — %s; attention max per image %s.\n" % (
        "; ".join("%s %s" % (t, ", ".join("%.3f" % p for p in probs[t].max(1).values.tolist())) for t in TASKS),
        ", ".join("%.3f" % a for a in out64["attention"].max(1).values.tolist())))
    lines.append("## Parameter counts (torchvision %s)\n" % torchvision.__version__)
    lines.append("| module | parameters |\n|---|---|")
    for k, v in counts.items():
        lines.append("| `%s` | %s |" % (k, format(v, ",")))
    lines.append("")
    lines.append("The b0 and b4 counts match the spec (4,007,548 and 17,548,616); the script asserts them.")
    write_atomic(os.path.join(args.out, "README.md"), ("\n".join(lines) + "\n").encode())

    for name, data in files.items():
        print("%-28s %8d bytes" % (name, len(data)))
    for k, v in counts.items():
        print("%-34s %12s" % (k, format(v, ",")))
    print("float32 vs float64 max abs diff: %.3e" % diff)


if __name__ == "__main__":
    sys.exit(main())
