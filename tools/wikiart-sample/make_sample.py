#!/usr/bin/env python3
"""Makes testdata/wikiart, the labelled WikiArt sample of the core tests, from a full WikiArt folder.

    python3 tools/wikiart-sample/make_sample.py ../shared/wikiart testdata/wikiart

Per style present in <src>/images (11 of 27): 2 images of the style train split and 2 of the style
val split, chosen deterministically: paths listed in only one split, preferring those with a genre
and an artist label in the same split, then by path; only paths of ASCII letters, digits and
"/._-" (the mojibake file names would make the Go module unfetchable: module zips refuse them). The sample's split CSVs keep, byte for byte and in order, the header
lines and the rows of the chosen paths, plus genre_val.csv's two conflicting rows of
Post_Impressionism/maurice-de-vlaminck_the-village.jpg (no image: exercises conflicts and missing
images). Class lists are copied; images are copied to <dst>/images/<path from the CSV>.
"""
import os
import re
import shutil
import sys

TASKS = ("style", "genre", "artist")
MODULE_SAFE = re.compile(rb"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+")
CONFLICT = b"Post_Impressionism/maurice-de-vlaminck_the-village.jpg"


def rows(path):
    """Yields (line bytes with its ending, path or None for header/blank lines)."""
    with open(path, "rb") as f:
        for line in f.read().splitlines(keepends=True):
            body = line.rstrip(b"\r\n")
            if not body or body.startswith(b"("):
                yield line, None
            else:
                yield line, body[: body.index(b",")]


def main(src, dst):
    listed = {}  # split -> task -> set of paths
    for split in ("train", "val"):
        listed[split] = {t: {p for _, p in rows(os.path.join(src, f"{t}_{split}.csv")) if p} for t in TASKS}
    every = {s: set().union(*listed[s].values()) for s in listed}
    img = os.path.join(src, "images").encode()
    chosen = set()
    for split, other in (("train", "val"), ("val", "train")):
        by_style = {}
        for p in sorted(listed[split]["style"]):
            if p in every[other] or not MODULE_SAFE.fullmatch(p) or not os.path.isfile(os.path.join(img, p)):
                continue
            score = (p in listed[split]["genre"]) + (p in listed[split]["artist"])
            by_style.setdefault(p.split(b"/")[0], []).append((-score, p))
        for style, cands in sorted(by_style.items()):
            cands.sort()
            chosen.update(p for _, p in cands[:2])
    os.makedirs(os.path.join(dst, "images"), exist_ok=True)
    for split in ("train", "val"):
        for t in TASKS:
            name = f"{t}_{split}.csv"
            keep = [line for line, p in rows(os.path.join(src, name))
                    if p is None or p in chosen or (name == "genre_val.csv" and p == CONFLICT)]
            with open(os.path.join(dst, name), "wb") as f:
                f.write(b"".join(keep))
    for t in TASKS:
        shutil.copyfile(os.path.join(src, f"{t}_class.txt"), os.path.join(dst, f"{t}_class.txt"))
    for p in sorted(chosen):
        out = os.path.join(dst.encode(), b"images", p)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copyfile(os.path.join(img, p), out)
    print(f"{len(chosen)} images")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
