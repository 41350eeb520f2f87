#!/usr/bin/python3
"""Export PyTorch's DeepArtNet B4 (224×224) with torch.onnx.export, for comparison with artnet's exporter.

Builds the model of ../shared/spec/deepartnet.md with spec.Default()'s configuration (b4, 224×224,
7×7 tokens, 2-layer BiLSTM 256) using gen_fixtures.py's module builder (imported, not copied:
gen_fixtures.py is unchanged), with fixed-seed weights and BatchNorm statistics calibrated on 8
random images (init_weights) in eval mode, and
exports it with torch.onnx.export: opset 17, input `image` [batch, 3, 224, 224] with a dynamic
batch axis, outputs style/genre/artist (softmax probabilities) and attention. The artnet
metadata_props (the keys and values of spec.Config.Metadata() for spec.Default()) are added with
the `onnx` module so that artnet's runtime accepts the file. Then it prints the node count, the
op-type counts (how the BiLSTM was exported) and the file size.

The file is ~90 MB: write it to a temporary path, never into the repository.

    /usr/bin/python3 tools/torchref/torch_onnx_b4.py /tmp/torch_b4.onnx
    ARTNET_BENCH_ONNX=/tmp/torch_b4.onnx go test -run XXX -bench B4ORT ./export/

With --safetensors FILE it also writes the state dict, so that artnet's exporter can export the
same weights (`artnet export --variant b4 --image-size 224 --weights FILE --onnx OUT`) and the
two files can be compared output for output (ARTNET_BENCH_REFERENCE in export/b4_bench_test.go).

Debian: python3-torch 1.13, python3-torchvision 0.14, python3-onnx 1.12.
"""

import argparse
import collections
import json
import os
import sys
import tempfile
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_fixtures as gf  # noqa: E402  (module builder; its main() is not run)

import onnx  # noqa: E402

ARTNET_VERSION = "0.1.0"  # models/spec.Version


def default_config():
    """spec.Default() of models/spec/spec.go, as its JSON (field order of the Go struct,
    omitempty fields left out)."""
    return collections.OrderedDict([
        ("variant", "b4"),
        ("image_size", 224),
        ("resize_size", 256),
        ("proj_dim", 512),
        ("lstm_hidden", 256),
        ("lstm_layers", 2),
        ("attn_dim", 256),
        ("head_hidden", 256),
        ("dropout", 0.4),
        ("drop_path", 0.2),
        ("mean", gf.IMAGENET_MEAN),
        ("std", gf.IMAGENET_STD),
        # Go's encoding/json writes map keys sorted.
        ("classes", collections.OrderedDict(
            (t, ["%s_%d" % (t, i) for i in range(gf.NUM_CLASSES[t])]) for t in sorted(gf.TASKS))),
    ])


def metadata(cfg):
    """spec.Config.Metadata(): the artnet.* metadata_props."""
    s = cfg["image_size"]
    g = s
    for _ in range(5):  # stem and the 4 stride-2 stages: n → ceil(n/2)
        g = (g + 1) // 2
    m = {
        "artnet.version": ARTNET_VERSION,
        "artnet.variant": cfg["variant"],
        "artnet.input_size": "%dx%d" % (s, s),
        "artnet.mean": ",".join(repr(v) for v in cfg["mean"]),
        "artnet.std": ",".join(repr(v) for v in cfg["std"]),
        "artnet.resize": "shorter_side=%d;center_crop=%dx%d;interp=bilinear" % (cfg["resize_size"], s, s),
        "artnet.tokens_grid": "%dx%d" % (g, g),
        # json.MarshalIndent(c, "", "  ")
        "artnet.config": json.dumps(cfg, indent=2, separators=(",", ": "), ensure_ascii=False),
    }
    for t in gf.TASKS:
        m["artnet.classes." + t] = json.dumps(cfg["classes"][t], separators=(",", ":"), ensure_ascii=False)
    return m


def init_weights(net, gen, size):
    """Input-sensitive, well-conditioned weights for output comparisons between exports.

    PyTorch's default initialization (BatchNorm running statistics 0 and 1) gives outputs that
    do not depend on the input (rows of a batch agree to 1e-8); gen_fixtures.randomize's larger
    gains make B4 chaotic (float32 vs float64 outputs differ by 0.5). Here: torchvision's conv
    initialization, BatchNorm running statistics measured on 8 random images in training mode,
    attention and head weights × 3. Then float32 vs float64 differ by < 1e-8 in the outputs
    while two images' outputs differ by ~1e-3."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        net.train()
        for _ in range(2):
            net.backbone(torch.randn(4, 3, size, size, generator=gen))
        for m in bns:
            m.momentum = 0.1
        for name, m in net.named_modules():
            if isinstance(m, nn.Linear) and name.startswith(("attention.", "heads.")):
                m.weight.mul_(3.0)
    net.eval()


class Exported(nn.Module):
    """DeepArtNet with the ONNX interface's outputs in order (style, genre, artist, attention)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        o = self.net(image)
        return o["style"], o["genre"], o["artist"], o["attention"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output .onnx path (use a temporary folder: the file is ~90 MB)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--safetensors", help="also write the model's state dict here (for `artnet export --weights`,"
                    " so that both exporters' files hold the same weights)")
    args = ap.parse_args()

    cfg = default_config()
    torch.manual_seed(args.seed)
    net = gf.DeepArtNet(cfg)
    s = cfg["image_size"]
    init_weights(net, torch.Generator().manual_seed(args.seed), s)
    net.eval()
    nparams = gf.nparams(net)
    model = Exported(net).eval()
    x = torch.randn(1, 3, s, s)

    d = os.path.dirname(os.path.abspath(args.out))
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(args.out) + ".tmp")
    os.close(fd)
    try:
        t0 = time.time()
        with torch.no_grad():
            torch.onnx.export(
                model, (x,), tmp, opset_version=17, do_constant_folding=True,
                input_names=["image"], output_names=["style", "genre", "artist", "attention"],
                dynamic_axes={n: {0: "batch"} for n in ["image", "style", "genre", "artist", "attention"]},
            )
        t_export = time.time() - t0
        m = onnx.load(tmp)
        del m.metadata_props[:]
        for k, v in sorted(metadata(cfg).items()):
            p = m.metadata_props.add()
            p.key, p.value = k, v
        onnx.checker.check_model(m)
        onnx.save(m, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, args.out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

    if args.safetensors:
        gf.write_atomic(args.safetensors, gf.st_bytes(list(net.state_dict().items()),
                                                       {"format": "pt", "generator": "tools/torchref/torch_onnx_b4.py"}))
        print("state dict written to %s" % args.safetensors)
    ops = collections.Counter(n.op_type for n in m.graph.node)
    size = os.path.getsize(args.out)
    print("torch %s: exported %s in %.1f s (opset %d, IR %d)" % (
        torch.__version__, args.out, t_export, m.opset_import[0].version, m.ir_version))
    print("parameters %d; file %d bytes = %.3f × 4·params; %d nodes, %d initializers" % (
        nparams, size, size / (4.0 * nparams), len(m.graph.node), len(m.graph.initializer)))
    print("ops: " + ", ".join("%s %d" % kv for kv in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))))
    for n in m.graph.node:
        if n.op_type == "LSTM":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            print("LSTM node %s: inputs %s, %s" % (n.name, list(n.input), {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}))


if __name__ == "__main__":
    sys.exit(main())
