"""Structured synthetic images for calibration benches and tests (no image files, no downloads)."""

from __future__ import annotations

import numpy as np


def synthetic_images(shape: list[int], first: int, count: int) -> np.ndarray:
    """`count` structured synthetic RGB images (index `first` on), ImageNet-normalised NCHW float32: smooth colour
    gradients, a few filled ellipses and rectangles, low-frequency blobs and fine texture. Deterministic per index.
    Not natural images, but with the spatial structure and value range a vision net's calibration needs."""
    n, c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / h, xx / w
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    out = np.empty((count, c, h, w), np.float32)
    for k in range(count):
        rng = np.random.default_rng(10_000 + first + k)
        a = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(a) * xx + np.sin(a) * yy
        img = rng.uniform(0, 1, (3, 1, 1)) + rng.uniform(-0.5, 0.5, (3, 1, 1)) * ramp
        for _ in range(rng.integers(2, 6)):
            cy, cx, ry, rx = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.4), rng.uniform(0.05, 0.4)
            mask = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1) if rng.random() < 0.5 else (
                (np.abs(yy - cy) < ry) & (np.abs(xx - cx) < rx))
            img = np.where(mask, rng.uniform(0, 1, (3, 1, 1)), img)
        small = rng.standard_normal((3, 8, 8)).astype(np.float32)
        blobs = np.kron(small, np.ones((h // 8 + 1, w // 8 + 1), np.float32))[:, :h, :w]
        img = img + 0.08 * blobs + 0.03 * rng.standard_normal((3, h, w))
        img = np.clip(img, 0, 1)[:c]
        out[k] = (img - mean[:c]) / std[:c]
    return out
