"""Rendered text for the PP-OCR detector and recognizer (tests/ppocr.py): calibration folders and held-out inputs.

    pages = text_pages(first=0, count=32)            # det: [count, 1, 3, 160, 160], ImageNet-normalized RGB
    lines, texts = text_lines(first=0, count=32)     # rec: [count, 1, 3, 48, 320], scaled to [-1, 1], BGR

Words are from the standard library's docstrings (tests/sentences.py), drawn in Pillow's built-in scalable font at
several sizes, dark on light with a little noise. Deterministic per index: calibrate on [0, n), quantize.target's
held-out folder from 500 on, evaluate on indices from 1000 on. Nothing is downloaded.
"""

from __future__ import annotations

import numpy as np

from edgec.quantize.synthetic import ppocr_line
from tests.sentences import sentences

# the quantize settings a user would state for each (tests/quantize/test_ocr_int8.py says why these):
# quantize.target (its held_out folder is added: rendered text from index 500 on) and the calibration method
# the stated quantize.target per model, with more quantize keys ("settings"): both models' int8 loss is in their
# activations (int8 activations reach map cosine 0.96 / step agreement 0.94 at best), so the profile states int16
# ones with goals a user would want (docs/quantization.md: OCR)
OCR_TARGETS = {
    "det": {"target": {"min_cosine": 0.99}, "settings": {"activations": "int16"}},  # the map, worst held-out page
    "rec": {"target": {"min_top1_agreement": 0.98}, "settings": {"activations": "int16"}},  # best class per CTC step
}
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
_STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]


def _words() -> list[str]:
    return [w.strip(".,:;()'\"") for s in sentences(200) for w in s.split() if w.strip(".,:;()'\"")]


def text_pages(first: int, count: int, size: int = 160) -> np.ndarray:
    """Pages of 2-5 text lines at random positions and sizes (some lines run off the edge, as in a crop)."""
    from PIL import Image, ImageDraw, ImageFont

    words = _words()
    out = np.empty((count, 1, 3, size, size), np.float32)
    for k in range(count):
        rng = np.random.default_rng(30_000 + first + k)
        bg = rng.integers(190, 256, 3)
        img = Image.new("RGB", (size, size), tuple(int(v) for v in bg))
        draw = ImageDraw.Draw(img)
        y = int(rng.integers(2, 20))
        while y < size - 12:
            font_size = int(rng.integers(12, 28))
            font = ImageFont.load_default(size=font_size)
            text = " ".join(rng.choice(words, int(rng.integers(1, 4))))
            fg = tuple(int(v) for v in rng.integers(0, 90, 3))
            draw.text((int(rng.integers(-10, 40)), y), text, fill=fg, font=font)
            y += font_size + int(rng.integers(6, 30))
        pixels = np.asarray(img, np.float32) + rng.normal(0, 3, (size, size, 3))
        out[k, 0] = (np.clip(pixels, 0, 255).transpose(2, 0, 1) / 255.0 - _MEAN) / _STD
    return out


def text_lines(first: int, count: int, height: int = 48, width: int = 320) -> tuple[np.ndarray, list[str]]:
    """Single text lines as the recognizer sees them (PaddleOCR's preprocessing: resized to `height` keeping the
    aspect ratio, BGR, [-1, 1], right-padded with zeros to `width`), and the rendered strings."""
    from PIL import Image, ImageDraw, ImageFont

    words = _words()
    out = np.zeros((count, 1, 3, height, width), np.float32)
    texts = []
    for k in range(count):
        rng = np.random.default_rng(40_000 + first + k)
        text = " ".join(rng.choice(words, int(rng.integers(1, 4))))
        if rng.random() < 0.3:
            text += f" {int(rng.integers(0, 99999))}"
        font = ImageFont.load_default(size=int(rng.integers(26, 40)))
        bg, fg = rng.integers(190, 256, 3), rng.integers(0, 90, 3)
        img = Image.new("RGB", (int(font.getlength(text)) + 16, 52), tuple(int(v) for v in bg))
        ImageDraw.Draw(img).text((8, 4), text, fill=tuple(int(v) for v in fg), font=font)
        out[k, 0] = ppocr_line(img, height, width)
        texts.append(text)
    return out, texts


def render(name: str, first: int, count: int) -> np.ndarray:
    """The inputs of PP-OCR `name`: pages for "det", lines for "rec"."""
    return text_pages(first, count) if name == "det" else text_lines(first, count)[0]


def save_folder(folder, arrays: np.ndarray, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(arrays):
        np.save(folder / f"{prefix}_{i:03d}.npy", x)


def ctc_decode(probs: np.ndarray) -> tuple[int, ...]:
    """Greedy CTC: the best class per step, repeats merged, blanks (class 0) dropped; [1, T, C] -> class ids.
    Two outputs read the same string exactly when their id sequences are equal (no dictionary needed)."""
    best = np.asarray(probs).reshape(-1, probs.shape[-1]).argmax(-1)
    keep = np.r_[True, best[1:] != best[:-1]] & (best != 0)
    return tuple(int(c) for c in best[keep])


def map_agreement(a: np.ndarray, b: np.ndarray, threshold: float = 0.3) -> float:
    """F-measure of two detector probability maps thresholded at `threshold` (DBNet's binarization): the overlap
    of the text pixels each marks, 1.0 when identical."""
    x, y = np.asarray(a) > threshold, np.asarray(b) > threshold
    total = int(x.sum() + y.sum())
    return 1.0 if total == 0 else 2.0 * float((x & y).sum()) / total
