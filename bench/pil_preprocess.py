#!/usr/bin/python3
"""Pillow's side of bench/decode-vs-pil.sh: the preprocessing torchvision 0.14 applies to a
PIL image (Image.open → convert("RGB") → Resize(256) BILINEAR → CenterCrop(224) → ToTensor →
Normalize(ImageNet mean/std)), done with Pillow and numpy (torchvision's transforms call the
same Pillow functions), on Debian's python3-pil 9.4 (libjpeg-turbo 2.1) and python3-numpy.

    pil_preprocess.py time IMAGE N    # ms per image (wall and CPU), full decode and draft
    pil_preprocess.py ref IMAGE DIR   # writes DIR/full.f32 and DIR/draft.f32 (CHW float32)

"draft" calls Image.draft("RGB", resized size) first: libjpeg's DCT-domain downscaling by
2, 4 or 8 when the image is at least twice the resized size. torchvision does not do this.
"""
import io
import sys
import time

import numpy as np
from PIL import Image

RESIZE, CROP = 256, 224
MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)


def resized(w, h):
    return (RESIZE, int(RESIZE * h / w)) if w <= h else (int(RESIZE * w / h), RESIZE)


def preprocess(data, draft):
    im = Image.open(io.BytesIO(data))
    if draft:
        im.draft("RGB", resized(*im.size))
    im = im.convert("RGB")
    nw, nh = resized(*im.size)
    im = im.resize((nw, nh), Image.BILINEAR)
    top, left = int(round((nh - CROP) / 2.0)), int(round((nw - CROP) / 2.0))
    a = np.asarray(im.crop((left, top, left + CROP, top + CROP)), np.float32).transpose(2, 0, 1) / 255.0
    return ((a - MEAN) / STD).astype(np.float32)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    if cmd == "ref":
        for name, draft in [("full", False), ("draft", True)]:
            preprocess(data, draft).tofile(f"{sys.argv[3]}/{name}.f32")
        return
    n = int(sys.argv[3])
    for name, draft in [("full", False), ("draft", True)]:
        for _ in range(10):
            preprocess(data, draft)
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            preprocess(data, draft)
        w, c = (time.perf_counter() - w0) / n, (time.process_time() - c0) / n
        print(f"PIL {name:5s} (Pillow {Image.__version__}): {w * 1e3:6.2f} ms/image wall, {c * 1e3:6.2f} ms/image CPU")


if __name__ == "__main__":
    main()
