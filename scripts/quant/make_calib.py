#!/usr/bin/env python3
"""Generates "real-looking" calibration / evaluation inputs for the 32x32 RGB test models:
smooth random images (a few random low-frequency sinusoids, soft-edged ellipses and a
colour gradient, plus mild pixel noise), in [0, 1], then normalised with ImageNet's
per-channel mean and std like torchvision inputs. Deterministic for a given seed.

Usage: make_calib.py OUT.npy COUNT SEED [H W]
Writes a float32 array [COUNT, 3, H, W] (NCHW), which `clio quantize --calib OUT.npy`
splits into COUNT samples.
"""
import sys

import numpy as np


def image(rng, h, w):
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    img = np.zeros((3, h, w))
    base = rng.uniform(0.2, 0.8, size=3)
    grad = rng.normal(0, 0.25, size=(3, 2))
    for c in range(3):
        img[c] = base[c] + grad[c, 0] * (yy - 0.5) + grad[c, 1] * (xx - 0.5)
    for _ in range(rng.integers(2, 5)):
        fy, fx = rng.uniform(0.5, 4, size=2)
        ph = rng.uniform(0, 2 * np.pi)
        amp = rng.normal(0, 0.12, size=3)
        wave = np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
        img += amp[:, None, None] * wave
    for _ in range(rng.integers(1, 4)):
        cy, cx = rng.uniform(0, 1, size=2)
        ry, rx = rng.uniform(0.08, 0.35, size=2)
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        mask = 1 / (1 + np.exp(np.minimum((d - 1) * 8, 50)))
        col = rng.uniform(0, 1, size=3)
        img = img * (1 - mask) + col[:, None, None] * mask
    img += rng.normal(0, 0.02, size=img.shape)
    return np.clip(img, 0, 1)


def main():
    out, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    h = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    w = int(sys.argv[5]) if len(sys.argv) > 5 else h
    rng = np.random.default_rng(seed)
    mean = np.array([0.485, 0.456, 0.406])[:, None, None]
    std = np.array([0.229, 0.224, 0.225])[:, None, None]
    x = np.stack([(image(rng, h, w) - mean) / std for _ in range(count)]).astype(np.float32)
    np.save(out, x)
    print(f"wrote {out}: {x.shape}, mean {x.mean():.3f}, std {x.std():.3f}")


if __name__ == "__main__":
    main()
