"""Quantization bench.

Default (the issue-5 "done means" table): per model, one `--target all --quantize int8` build calibrated on
structured synthetic images (.npy files; see synthetic_images), then the SAME held-out images (never used for
calibration) through the ORT, TFLite and CoreML int8 artifacts: top-1 agreement and cosine vs fp32 ONNX Runtime
and pairwise between targets; artifact size int8 vs fp32; host latency int8 vs fp32 for ORT and LiteRT
(interleaved in the same run, ratio); the latency estimator's predicted speedup for each target's profile device;
and how near-tied the fp32 top-1 logits are (random-weight nets can be).

    python bench/quantize.py [--models squeezenet,shufflenet,densenet121,resnet50] [--zoo mobilenet_v2,resnet18]
                             [--trained] [--calib 32] [--eval 100] [--runs 20] [--threads 1]

--trained adds a TRAINED network, PaddleOCR's text-orientation classifier, on rendered text lines with true
labels: random-weight nets decide mostly near-ties, a trained one makes real decisions, so its top-1 agreement
and accuracy against the labels are the meaningful int8 numbers.

--floor: how far weight rounding ALONE moves each model's decisions (fp32 activations and compute in ONNX Runtime,
only the conv/matmul weights rounded: to fp16, and to per-channel symmetric int8 as the quantizer writes them).
It bounds what any int8 scheme with 8-bit weights can reach on that model.

Per-mode table (older): --per-mode [--targets ort-mobile] [--modes int8,fp16,...] [--calibration random|DIR]

Models: the random-weight light models (edgec.samples.randomized), and torch-exported zoo models when
tests/zoo.py has already built them (<cache>/zoo/NAME.onnx; this bench never starts that build).
Prints a Markdown table. Size and latency ratios are mode / fp32 (< 1: smaller, faster). With random
calibration, top-1 is agreement on random inputs, not accuracy on real data.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

from edgec import api, samples
from edgec.errors import EdgecError
from edgec.quantize.synthetic import synthetic_images, text_crops
from edgec.graph.shapes import dims_of, real_inputs
from edgec.lower.backend import get_backend
from edgec.graph.inputs import input_specs, random_inputs
from edgec.validate.timing import time_runs

import numpy as np
import onnx

PROFILE = """\
name: bench-{target}-{mode}
target: {target}
hardware:
  cpu: {{cores: 2, peak_gflops_fp32: 10}}
  memory_bandwidth_gbps: 10
runtime: {{threads: {threads}}}
quantize:
  mode: {mode}
  calibration: {{source: {source}, samples: {samples}}}
validate:
  latency: {{mode: off}}
"""


def _build(model: Path, name: str, target: str, mode: str, args, work: Path):
    prof = work / f"{name}-{target}-{mode}.yaml"
    prof.write_text(PROFILE.format(target=target, mode=mode, threads=args.threads, source=args.calibration,
                                   samples=args.samples))
    t0 = time.perf_counter()
    outcome = api.build(model, api.BuildOptions(target=target, profile=str(prof), out_dir=work / f"{target}-{mode}",
                                                model_name=name))
    return outcome.result.artifacts[0], time.perf_counter() - t0


def _interleaved_ms(runners, feed, runs: int, rounds: int = 4) -> list[float]:
    """Median ms per runner; runs alternate in rounds so load on the shared machine hits both alike."""
    times = [[] for _ in runners]
    for r in runners:
        time_runs(lambda: r.run(feed), 0, 3)
    for _ in range(rounds):
        for i, r in enumerate(runners):
            times[i] += time_runs(lambda: r.run(feed), max(1, runs // rounds), 1)
    return [float(np.median(t)) for t in times]


def bench(name: str, model: Path, targets: list[str], modes: list[str], args) -> list[str]:
    rows = []
    spec = input_specs(onnx.load(str(model), load_external_data=False))
    for target in targets:
        with tempfile.TemporaryDirectory(prefix="edgec-qbench-") as tmp:
            work = Path(tmp)
            try:
                base, base_s = _build(model, name, target, "none", args, work)
            except EdgecError as e:
                rows.append(f"| {name} | {target} | fp32 | failed: {e.kind} | | | | | | |")
                continue
            backend = get_backend(base.artifact.format)
            for mode in modes:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        art, build_s = _build(model, name, target, mode, args, work)
                except EdgecError as e:
                    rows.append(f"| {name} | {target} | {mode} | {e.kind}: {str(e)[:90]} | | | | | | |")
                    continue
                # the built model's own (fixed) input shapes
                shapes = {n: s for n, _, s in spec}
                specs = [(n, d, [1 if isinstance(x, str) or x < 1 else x for x in shapes[n]]) for n, d, _ in spec]
                feed = random_inputs(specs, seed=0, samples=1)[0]
                r_base = backend.runner(replace(base.artifact, path=base.final_path), args.threads)
                r_q = backend.runner(replace(art.artifact, path=art.final_path), args.threads)
                ms_base, ms_q = _interleaved_ms([r_base, r_q], feed, args.runs)
                n = art.numerics
                out = next(iter(n.outputs.values()))
                top1 = "-" if out.top1 is None else f"{out.top1:.3f}"
                rows.append(
                    f"| {name} | {target} | {mode} | {art.bytes / 1e6:.2f} / {base.bytes / 1e6:.2f} MB "
                    f"({art.bytes / base.bytes:.2f}x) | {ms_q:.2f} / {ms_base:.2f} ms ({ms_q / ms_base:.2f}x) | "
                    f"{out.cosine:.5f} | {out.max_abs:.3g} | {top1} | {'pass' if n.passed else 'FAIL'} | "
                    f"{art.seconds.get('prepare', 0):.1f} s |"
                )
    return rows


DECISIVE = 0.1


def _classifier_output(outputs: dict) -> str | None:
    for name, v in outputs.items():
        s = v.shape
        if (len(s) == 2 or (len(s) == 4 and s[2] == 1 and s[3] == 1)) and s[1] >= 10:
            return name
    return None


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def _images(shape: list[int], first: int, count: int) -> tuple[np.ndarray, None]:
    return synthetic_images(shape, first, count), None  # no labels: agreement with fp32 only


def _text_lines(shape: list[int], first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    return text_crops(first, count, shape[2], shape[3])  # labels: 0 upright, 1 turned 180 degrees


def cross(name: str, model: Path, args, data=_images, shape: list[int] | None = None) -> dict:
    """One model: fp32 and int8 `--target all` builds, the held-out table, sizes and host latencies.
    data(shape, first, count) -> (NCHW inputs, labels or None); shape: fixes the input's dynamic dims."""
    from edgec.runtimes.host_ort import OrtRunner

    m = onnx.load(str(model), load_external_data=False)
    value, = real_inputs(m)
    inp = value.name
    shape = shape or [1 if isinstance(x, str) or x < 1 else x for x in dims_of(value)]
    row: dict = {"model": name}
    with tempfile.TemporaryDirectory(prefix="edgec-qcross-") as tmp:
        work = Path(tmp)
        calib = work / "calib"
        calib.mkdir()
        # the build's own table uses the files after the first --calib ones (up to 32)
        for i, x in enumerate(data(shape, 0, args.calib + 32)[0]):
            np.save(calib / f"img_{i:04d}.npy", x[None])
        builds = {}
        for mode in ("none", "int8"):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome = api.build(model, api.BuildOptions(
                    target="all", out_dir=work / mode, model_name=name, quantize=mode, latency="off",
                    calibration=str(calib) if mode == "int8" else None,
                    input_shapes=[f"{inp}={','.join(map(str, shape))}"]))
            builds[mode] = {a.artifact.target: a for a in outcome.result.artifacts}
            row[f"failed_{mode}"] = {f.target: f"{f.error.kind}: {str(f.error)[:120]}" for f in outcome.failures}
            row[f"build_s_{mode}"] = time.perf_counter() - t0
        row["build_table"] = outcome.result.cross_target
        targets = sorted(builds["int8"])
        runners = {}
        for mode in ("none", "int8"):
            for t, a in builds[mode].items():
                runners[(t, mode)] = get_backend(a.artifact.format).runner(
                    replace(a.artifact, path=a.final_path), args.threads)
        ref = OrtRunner(model, threads=args.threads)
        # held-out images: indices after every file the build saw
        evals, labels = data(shape, args.calib + 32, args.eval)
        outs = {t: [] for t in targets}
        refs = []
        for x in evals:
            feed = {inp: x[None]}
            refs.append(ref.run(feed))
            for t in targets:
                outs[t].append(runners[(t, "int8")].run(feed))
        out = _classifier_output(refs[0]) or next(iter(refs[0]))
        r = [np.asarray(o[out], np.float64).ravel() for o in refs]
        top = {t: [int(np.argmax(np.asarray(o[out]).ravel())) for o in outs[t]] for t in targets}
        ref_top = [int(np.argmax(x)) for x in r]
        row["output"], row["samples"], row["targets"] = out, len(r), targets
        row["vs_fp32"] = {t: (np.mean([a == b for a, b in zip(top[t], ref_top)]),
                              min(_cos(x, np.asarray(o[out])) for x, o in zip(r, outs[t]))) for t in targets}
        row["pairs"] = {(a, b): (np.mean([x == y for x, y in zip(top[a], top[b])]),
                                 min(_cos(np.asarray(p[out]), np.asarray(q[out])) for p, q in zip(outs[a], outs[b])))
                        for i, a in enumerate(targets) for b in targets[i + 1:]}
        # near ties: the fp32 margin between the two best classes, in units of the logits' spread
        margins = [float(np.diff(np.sort(x)[-2:])[0] / (x.std() + 1e-30)) for x in r]
        row["margin_median"], row["margin_lt_0.05"] = float(np.median(margins)), float(np.mean(np.array(margins) < 0.05))
        row["distinct_top1"] = len(set(ref_top))
        if labels is not None:  # accuracy against the true labels, fp32 and each int8 artifact
            row["accuracy"] = {"fp32": float(np.mean(np.array(ref_top) == labels)),
                               **{t: float(np.mean(np.array(top[t]) == labels)) for t in targets}}
        # top-1 where fp32 itself is decisive (top-2 margin >= DECISIVE x the logits' std): near-ties of a random-
        # weight net flip under any perturbation, so this separates quantization damage from coin flips
        keep = [i for i, mg in enumerate(margins) if mg >= DECISIVE]
        row["decisive"] = len(keep)
        row["decisive_top1"] = {t: float(np.mean([top[t][i] == ref_top[i] for i in keep])) if keep else None
                                for t in targets}
        row["size"] = {t: (builds["int8"][t].bytes, builds["none"][t].bytes) for t in targets if t in builds["none"]}
        row["predicted"] = {t: builds["int8"][t].artifact.details.get("quantize", {}).get("predicted_speedup")
                            for t in targets}
        row["latency"] = {}
        feed = {inp: evals[0][None]}
        for t in targets:
            if builds["int8"][t].artifact.format in ("ort", "tflite") and (t, "none") in runners:
                q_ms, f_ms = _interleaved_ms([runners[(t, "int8")], runners[(t, "none")]], feed, args.runs)
                row["latency"][t] = (q_ms, f_ms)
            if builds["int8"][t].artifact.format == "ort" and (t, "none") in runners:
                # what ORT itself does at load (default level 'all'), minus the x86-only NCHWc layouts: its NHWC
                # transformer turns QLinearConv channels-last, as ORT Mobile does on ARM. edgec's .ort runner
                # measures level 'disable' (only the optimizations fixed into the file).
                pair = [_OrtLoadTime(builds[m][t].final_path, args.threads) for m in ("int8", "none")]
                row["latency_runtime_all"] = _interleaved_ms(pair, feed, args.runs)
    return row


class _OrtLoadTime:
    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        from edgec.runtimes.host_ort import KEEPS_FLOAT_NODES_FLOAT, session_options

        self.s = ort.InferenceSession(str(path), session_options(threads, "all"), providers=["CPUExecutionProvider"],
                                      disabled_optimizers=["NchwcTransformer", *KEEPS_FLOAT_NODES_FLOAT])

    def run(self, feed):
        return self.s.run(None, feed)


def print_cross(rows: list[dict]) -> None:
    print("\n### Held-out agreement: top-1 / min cosine (vs fp32 ONNX Runtime, and between targets)\n")
    print("| model | samples | distinct fp32 top-1 | fp32 top-2 margin (median, /std) | target vs fp32 | "
          f"pairwise | targets agree >= vs fp32 | top-1 vs fp32 where margin >= {DECISIVE} std |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "vs_fp32" not in r:
            continue
        vs = "; ".join(f"{t} {a:.3f} / {c:.5f}" for t, (a, c) in r["vs_fp32"].items())
        pw = "; ".join(f"{a}-{b} {x:.3f} / {c:.5f}" for (a, b), (x, c) in r["pairs"].items())
        ok = (min(x for x, _ in r["pairs"].values()) >= min(a for a, _ in r["vs_fp32"].values())
              if r["pairs"] else "-")
        name = r["model"] + ("".join(f"; accuracy vs labels: {t} {a:.3f}" for t, a in r["accuracy"].items())
                             if "accuracy" in r else "")
        print(f"| {name} | {r['samples']} | {r['distinct_top1']} | {r['margin_median']:.3f} "
              f"({100 * r['margin_lt_0.05']:.0f}% < 0.05) | {vs} | {pw} | {ok} | {r['decisive']} samples: "
              + "; ".join(f"{t} {'-' if v is None else f'{v:.3f}'}" for t, v in r["decisive_top1"].items()) + " |")
    print("\n### Size and host latency, int8 / fp32 (same run, interleaved); estimator's predicted speedup\n")
    print("| model | target | size int8 / fp32 | host ms int8 / fp32 (ratio) | predicted speedup on profile device "
          "(Q/DQ between int8 ops fused) |")
    print("|---|---|---|---|---|")
    for r in rows:
        for t in r.get("targets", []):
            s = r["size"].get(t)
            size = f"{s[0] / 1e6:.2f} / {s[1] / 1e6:.2f} MB ({s[0] / s[1]:.2f}x)" if s else "-"
            lat = r["latency"].get(t)
            lat = f"{lat[0]:.2f} / {lat[1]:.2f} ({lat[0] / lat[1]:.2f}x)" if lat else "- (no host runtime)"
            if r["latency"].get(t) and r.get("latency_runtime_all") and t == "ort-mobile":
                q, f = r["latency_runtime_all"]
                lat += f"; ORT load-time level all w/o NCHWc: {q:.2f} / {f:.2f} ({q / f:.2f}x)"
            p = r["predicted"].get(t) or {}
            pred = (f"{p['profile']}: {p['speedup']:.2f}x ({p.get('qdq_ms', 0):.2f} ms boundary Q/DQ)"
                    if p.get("speedup") else "-")
            print(f"| {r['model']} | {t} | {size} | {lat} | {pred} |")
        for mode in ("none", "int8"):
            for t, why in r.get(f"failed_{mode}", {}).items():
                print(f"| {r['model']} | {t} | {'fp32' if mode == 'none' else mode} build failed: {why} | | |")


def _models(args) -> list[tuple[str, object]]:
    """--models (random-weight light models) plus the --zoo torch exports that tests/zoo.py has built."""
    models = [(n, samples.randomized(n)) for n in args.models.split(",") if n]
    for z in filter(None, args.zoo.split(",")):
        path = samples.cache_dir() / "zoo" / f"{z}.onnx"
        if path.exists():
            models.append((z, path))
        else:
            print(f"(zoo model {z} not built yet at {path}; skipped)")
    return models


def _bench_models(args) -> list[tuple]:
    """(name, path, data function, input shape or None) for _models plus, with --trained, PaddleOCR's trained
    text-orientation classifier (tests/ppocr.py fetches it through pip)."""
    models = [(name, path, _images, None) for name, path in _models(args)]
    if args.trained:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.ppocr import INPUT_SHAPES, ppocr_model

        models.append(("ppocr-cls (trained)", ppocr_model("cls"), _text_lines, list(INPUT_SHAPES["cls"])))
    return models


def main_cross(args) -> None:
    models = _bench_models(args)
    print(f"int8 --target all; calibration: {args.calib} structured synthetic images (text lines for the OCR "
          f"classifier); held-out: {args.eval} others; {args.threads} thread(s), {args.runs} latency runs")
    rows = []
    for name, path, data, shape in models:
        rows.append(cross(name, path, args, data, shape))
        print(f"({name}: fp32 build {rows[-1]['build_s_none']:.0f} s, int8 build {rows[-1]['build_s_int8']:.0f} s)",
              flush=True)
    print_cross(rows)


def _rounded_weights(model: onnx.ModelProto, how: str) -> onnx.ModelProto:
    """A copy whose float weights (rank >= 2 initializers) are rounded to fp16 or per-channel int8, stored as
    float32 again: the weight error of that format and nothing else."""
    from onnx import numpy_helper

    from edgec.quantize.int8 import symmetric_int8

    m = onnx.ModelProto.FromString(model.SerializeToString())
    for t in m.graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT or len(t.dims) < 2:
            continue
        w = numpy_helper.to_array(t)
        if how == "fp16":
            r = w.astype(np.float16).astype(np.float32)
        else:
            q, scale = symmetric_int8(w)
            r = q.astype(np.float32) * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        t.CopyFrom(numpy_helper.from_array(r.astype(np.float32), t.name))
    return m


def main_floor(args) -> None:
    from edgec.runtimes.host_ort import OrtRunner

    models = _bench_models(args)
    print(f"weight rounding only (fp32 activations and compute, ONNX Runtime); {args.eval} held-out synthetic "
          f"inputs (text lines for the OCR classifier)\n")
    print("| model | fp16 weights: top-1 vs fp32 / min cosine | int8 per-channel weights: top-1 / min cosine |")
    print("|---|---|---|")
    for name, path, data, shape in models:
        model = onnx.load(str(path))
        value, = real_inputs(model)
        shape = shape or [1 if isinstance(x, str) or x < 1 else x for x in dims_of(value)]
        x = data(shape, args.calib + 32, args.eval)[0]  # the cross-target bench's held-out range
        runs = {how: OrtRunner(m, threads=args.threads) for how, m in
                (("fp32", model), ("fp16", _rounded_weights(model, "fp16")), ("int8", _rounded_weights(model, "int8")))}
        outs = {how: [next(iter(r.run({value.name: xi[None]}).values())).reshape(-1) for xi in x]
                for how, r in runs.items()}
        cells = []
        for how in ("fp16", "int8"):
            top1 = np.mean([a.argmax() == b.argmax() for a, b in zip(outs[how], outs["fp32"])])
            cells.append(f"{top1:.2f} / {min(_cos(a, b) for a, b in zip(outs[how], outs['fp32'])):.5f}")
        print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-mode", action="store_true", help="the older per-target, per-mode table")
    ap.add_argument("--floor", action="store_true", help="top-1 after rounding only the weights (fp16, int8)")
    ap.add_argument("--calib", type=int, default=32, help="cross-target bench: calibration images")
    ap.add_argument("--eval", type=int, default=100, help="cross-target bench: held-out images")
    ap.add_argument("--models", default=None)
    ap.add_argument("--zoo", default="", help="zoo models to add, if tests/zoo.py has built them")
    ap.add_argument("--trained", action="store_true", help="add PaddleOCR's trained text-orientation classifier")
    ap.add_argument("--targets", default="ort-mobile")
    ap.add_argument("--modes", default="int8,int8-dynamic,int8-weights,fp16")
    ap.add_argument("--calibration", default="random")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not args.per_mode:
        args.models = args.models if args.models is not None else "squeezenet,shufflenet,densenet121,resnet50"
        return main_floor(args) if args.floor else main_cross(args)
    args.models = args.models if args.models is not None else "squeezenet,shufflenet,inception_v1,resnet50"
    models = _models(args)
    print(f"calibration: {args.calibration}, {args.samples} samples; {args.threads} thread(s), {args.runs} runs\n")
    print("| model | target | mode | size (mode / fp32) | host latency (mode / fp32) | cosine | max-abs | top-1 "
          "| gate | quantize time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, path in models:
        for row in bench(name, path, args.targets.split(","), args.modes.split(","), args):
            print(row, flush=True)


if __name__ == "__main__":
    main()
