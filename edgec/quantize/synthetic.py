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


WORDS = ("invoice total amount date order number receipt paid cash change item qty price tax subtotal "
         "name address phone email account balance due ref code").split()


def text_crops(first: int, count: int, height: int = 48, width: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """`count` rendered text lines (index `first` on) as a text-orientation classifier sees them, and their labels
    (0 upright, 1 turned 180 degrees; odd indices are turned): dark words and numbers on a light background in
    Pillow's built-in font, resized to `height` keeping the aspect ratio, right-padded with zeros to `width`,
    BGR, scaled to [-1, 1] (PaddleOCR's preprocessing). Deterministic per index."""
    from PIL import Image, ImageDraw, ImageFont

    out = np.zeros((count, 3, height, width), np.float32)
    labels = np.zeros(count, np.int64)
    for k in range(count):
        rng = np.random.default_rng(20_000 + first + k)
        text = " ".join(rng.choice(WORDS, int(rng.integers(1, 3))))
        if rng.random() < 0.3:
            text += f" {int(rng.integers(0, 99999))}"
        font = ImageFont.load_default(size=int(rng.integers(28, 40)))
        bg, fg = int(rng.integers(200, 256)), int(rng.integers(0, 80))
        img = Image.new("RGB", (int(font.getlength(text)) + 16, 52), (bg, bg, bg))
        ImageDraw.Draw(img).text((8, 4), text, fill=(fg, fg, fg), font=font)
        labels[k] = (first + k) % 2
        if labels[k]:
            img = img.rotate(180)
        out[k] = ppocr_line(img, height, width)
    return out, labels


def ppocr_line(img, height: int, width: int) -> np.ndarray:
    """A rendered text line (PIL RGB image) as PaddleOCR's line models read it: resized to `height` keeping the
    aspect ratio, BGR, scaled to [-1, 1], right-padded with zeros to `width`: [3, height, width] float32."""
    from PIL import Image

    out = np.zeros((3, height, width), np.float32)
    w = min(width, int(round(img.width * height / img.height)))
    pixels = np.asarray(img.resize((w, height), Image.BILINEAR), np.float32)[:, :, ::-1]
    out[:, :, :w] = ((pixels / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
    return out
