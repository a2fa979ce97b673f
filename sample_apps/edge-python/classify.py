#!/usr/bin/env python3
"""Classify an image with an edgec-built ONNX Runtime Mobile model (.ort) on a Linux board (Raspberry Pi, Jetson).

    python3 classify.py dist/squeezenet.ort photo.jpg [--labels labels.txt] [--top 5] [--threads 4] [--json]

Only needs numpy, pillow and onnxruntime (the regular wheel reads .ort files; on a custom minimal ORT build use the
edgec-written *.required_operators.config). Preprocessing is the ImageNet convention of the ONNX model zoo's
classifiers: shorter side to 256, centre crop to the model's input size, RGB scaled to [0, 1], mean/std
normalised, NCHW float32. Change `preprocess` if your model was trained differently.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def preprocess(image_path: Path, height: int, width: int) -> np.ndarray:
    from PIL import Image

    img = Image.open(image_path).convert("RGB")
    short = round(max(height, width) * 256 / 224)  # 224 -> 256, as in the ImageNet evaluation recipe
    scale = short / min(img.size)
    img = img.resize((max(width, round(img.width * scale)), max(height, round(img.height * scale))), Image.BILINEAR)
    left, top = (img.width - width) // 2, (img.height - height) // 2
    img = img.crop((left, top, left + width, top + height))
    x = (np.asarray(img, dtype=np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])  # HWC -> 1xCxHxW


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def load_session(model: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


def classify(model: Path, image: Path, top: int = 5, threads: int = 2, labels: list[str] | None = None) -> dict:
    session = load_session(model, threads)
    inp = session.get_inputs()[0]
    _, channels, height, width = inp.shape  # edgec fixes every input shape at build time
    if channels != 3:
        raise SystemExit(f"{model}: expected an NCHW image input with 3 channels, got shape {inp.shape}")
    x = preprocess(image, height, width)
    session.run(None, {inp.name: x})  # warm-up: the first run allocates
    t0 = time.perf_counter()
    (scores,) = session.run([session.get_outputs()[0].name], {inp.name: x})
    ms = (time.perf_counter() - t0) * 1000
    scores = scores.reshape(-1).astype(np.float64)
    # zoo models differ: some end in Softmax, some return logits
    probs = scores if np.all(scores >= 0) and abs(scores.sum() - 1) < 1e-3 else softmax(scores)
    best = np.argsort(-probs, kind="stable")[:top]
    return {
        "model": str(model), "image": str(image), "ms": ms,
        "top": [{"index": int(i), "label": labels[i] if labels and i < len(labels) else str(int(i)),
                 "probability": float(probs[i])} for i in best],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="the .ort file from `edgec build --target ort-mobile`")
    ap.add_argument("image", type=Path)
    ap.add_argument("--labels", type=Path, help="text file, one class name per line")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    labels = args.labels.read_text().splitlines() if args.labels else None
    result = classify(args.model, args.image, args.top, args.threads, labels)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.image.name}: {result['ms']:.1f} ms")
        for r in result["top"]:
            print(f"  {r['probability']:.4f}  {r['label']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
