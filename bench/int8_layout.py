"""int8 TFLite layout: TRANSPOSE / QUANTIZE / DEQUANTIZE per artifact, int8 vs fp32, and host latency.

Per model of the zoo (the random-weight light models, and the torch zoo's image models when tests/zoo.py has built
them): the fp32 TFLite file and the int8 one (random calibration, as the tests use), op counts read from the
lowering's histogram, then LiteRT latency of both files at 1 thread, interleaved in the same run (ratio int8/fp32; the fastest run of
each, as load on a shared machine only adds time).

    python bench/int8_layout.py [--models squeezenet,resnet18,...] [--runs 20] [--threads 1] [--no-latency]
                                [--before REV]

--before REV: also lower the int8 model with edgec as of git revision REV (e.g. main before the int8 layout work;
`git archive` into a temp dir, run in a subprocess) and time its file in the same interleaved rounds: the
before/after columns of the same run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import json

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("EDGEC_BENCH_SRC", str(REPO)))  # --before runs this file on an older edgec

from edgec import samples  # noqa: E402
from edgec.config.loader import load_profile  # noqa: E402
from edgec.lower.tflite.convert import convert  # noqa: E402
from edgec.paths import cache_dir  # noqa: E402
from edgec.prepare import prepare  # noqa: E402
from edgec.runtimes.host_litert import LiteRTRunner  # noqa: E402
from edgec.validate.timing import time_runs  # noqa: E402

PROFILE = """\
name: int8-layout
target: android
hardware:
  cpu: {cores: 2, peak_gflops_fp32: 10}
  memory_bandwidth_gbps: 10
runtime: {threads: 1}
quantize:
  mode: int8
  calibration: {source: random, samples: 8}
  sensitivity: 0
validate:
  latency: {mode: off}
"""
LIGHT = ["squeezenet", "shufflenet", "inception_v1", "inception_v2", "densenet121", "resnet50"]
TORCH = ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet18", "shufflenet_v2_x1_0",
         "squeezenet1_1", "detection_head"]
COUNTED = ("TRANSPOSE", "QUANTIZE", "DEQUANTIZE")


TRAINED = ["efficientnet_lite0", "pnet_128"]  # tests/trained_zoo.py, tests/trained_detector.py


def model_path(name: str) -> Path | None:
    if name in samples.LIGHT_MODELS:
        return samples.randomized(name)
    folder = "trained_zoo" if name.startswith("efficientnet_lite") else "trained_detector" if name in TRAINED else "zoo"
    path = cache_dir() / folder / f"{name}.onnx"
    return path if path.exists() else None  # this bench never starts the zoo build


def lower_both(path: Path, profile_path: Path):
    """(fp32 Converted, int8 Converted, number of float model inputs) of one model."""
    model = onnx.load(str(path))
    shapes = {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in model.graph.input
              if i.name not in {t.name for t in model.graph.initializer}}
    fp32 = convert(prepare(model, shapes, str(path)).model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = prepare(model, shapes, str(path), load_profile(str(profile_path)), "tflite")
    return fp32, convert(q.model), shapes


def write_int8(name: str, profile_path: Path, out: Path) -> None:
    """The int8 file of `name` (the subprocess side of --before)."""
    _, q, _ = lower_both(model_path(name), profile_path)
    out.write_bytes(q.data)
    print(json.dumps({"ops": q.op_histogram}))


def before_int8(rev: str, src: Path, name: str, profile_path: Path, out: Path) -> dict:
    """Lower `name` to int8 with edgec at git revision `rev` (exported to `src` once); its op histogram."""
    if not (src / "edgec").exists():
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "edgec", "targets", "profiles"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    env = {**os.environ, "EDGEC_BENCH_SRC": str(src), "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, __file__, "--write-int8", name, str(profile_path), str(out)], env=env,
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["ops"]


def _ms(paths: list[Path], feed: dict, runs: int, threads: int) -> list[float]:
    runners = [LiteRTRunner(p, threads=threads) for p in paths]
    times = [[] for _ in runners]
    for r in runners:
        time_runs(lambda: r.run(feed), 0, 3)
    for _ in range(4):  # interleaved rounds: load on the shared machine hits both alike
        for i, r in enumerate(runners):
            times[i] += time_runs(lambda: r.run(feed), max(1, runs // 4), 1)
    # the minimum: on a shared machine the load only adds time, so the fastest run is the kernel's own
    return [float(np.min(t)) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(LIGHT + TORCH + TRAINED))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--before", metavar="REV", help="also time the int8 file edgec at git revision REV writes")
    ap.add_argument("--write-int8", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write_int8:
        name, prof, out = args.write_int8
        return write_int8(name, Path(prof), Path(out))
    before = f" | TRANSPOSE / QUANTIZE int8 at {args.before} | ms int8 at {args.before} (ratio to fp32)" if args.before else ""
    print("| model | TRANSPOSE fp32 / int8 | QUANTIZE (float in / requant) | DEQUANTIZE (activation / weight) | "
          f"ops fp32 / int8 | ms fp32 / int8 (ratio){before} |")
    print("|---|---|---|---|---|---|" + ("---|---|" if args.before else ""))
    with tempfile.TemporaryDirectory(prefix="edgec-int8-layout-") as tmp:
        work = Path(tmp)
        prof = work / "int8.yaml"
        prof.write_text(PROFILE)
        for name in args.models.split(","):
            path = model_path(name)
            if path is None:
                print(f"| {name} | not built (tests/zoo.py builds the zoo) | | | | |")
                continue
            fp32, q, shapes = lower_both(path, prof)
            if fp32.problems or q.problems:
                print(f"| {name} | problems: {(fp32.problems or q.problems)[:2]} | | | | |")
                continue
            h32, h8, c = fp32.op_histogram, q.op_histogram, q.stats["quant_ops"]
            files = [work / "fp32.tflite", work / "int8.tflite"]
            files[0].write_bytes(fp32.data)
            files[1].write_bytes(q.data)
            old = ""
            if args.before:
                files.append(work / "before.tflite")
                hb = before_int8(args.before, work / "before-src", name, prof, files[2])
                old = f" | {hb.get('TRANSPOSE', 0)} / {hb.get('QUANTIZE', 0)}"
            lat = ""
            if not args.no_latency:
                rng = np.random.default_rng(0)
                feed = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
                ms = _ms(files, feed, args.runs, args.threads)
                lat = f"{ms[0]:.2f} / {ms[1]:.2f} ({ms[1] / ms[0]:.2f}x)"
                if args.before:
                    old += f" | {ms[2]:.2f} ({ms[2] / ms[0]:.2f}x)"
            elif args.before:
                old += " | "
            print(f"| {name} | {h32.get('TRANSPOSE', 0)} / {h8.get('TRANSPOSE', 0)} | {c['quantize']} / {c['requantize']} | "
                  f"{c['dequantize']} / {c['dequantize_weights']} | {sum(h32.values())} / {sum(h8.values())} | {lat}{old} |",
                  flush=True)


if __name__ == "__main__":
    main()
