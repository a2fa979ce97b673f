"""int8 TFLite layout: TRANSPOSE / QUANTIZE / DEQUANTIZE per artifact, int8 vs fp32, and host latency.

Per model of the zoo (the random-weight light models, and the torch zoo's image models when tests/zoo.py has built
them): the fp32 TFLite file and the int8 one (random calibration, as the tests use), op counts read from the
lowering's histogram, then LiteRT latency of both files at 1 thread, interleaved in the same run (ratio int8/fp32).

    python bench/int8_layout.py [--models squeezenet,resnet18,...] [--runs 20] [--threads 1] [--no-latency]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def model_path(name: str) -> Path | None:
    if name in samples.LIGHT_MODELS:
        return samples.randomized(name)
    path = cache_dir() / "zoo" / f"{name}.onnx"
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


def _ms(paths: list[Path], feed: dict, runs: int, threads: int) -> list[float]:
    runners = [LiteRTRunner(p, threads=threads) for p in paths]
    times = [[] for _ in runners]
    for r in runners:
        time_runs(lambda: r.run(feed), 0, 3)
    for _ in range(4):  # interleaved rounds: load on the shared machine hits both alike
        for i, r in enumerate(runners):
            times[i] += time_runs(lambda: r.run(feed), max(1, runs // 4), 1)
    return [float(np.median(t)) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(LIGHT + TORCH))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-latency", action="store_true")
    args = ap.parse_args()
    print("| model | TRANSPOSE fp32 / int8 | QUANTIZE (float in / requant) | DEQUANTIZE (activation / weight) | "
          "ops fp32 / int8 | ms fp32 / int8 (ratio) |")
    print("|---|---|---|---|---|---|")
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
            lat = ""
            if not args.no_latency:
                (work / "fp32.tflite").write_bytes(fp32.data)
                (work / "int8.tflite").write_bytes(q.data)
                rng = np.random.default_rng(0)
                feed = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
                a, b = _ms([work / "fp32.tflite", work / "int8.tflite"], feed, args.runs, args.threads)
                lat = f"{a:.2f} / {b:.2f} ({b / a:.2f}x)"
            print(f"| {name} | {h32.get('TRANSPOSE', 0)} / {h8.get('TRANSPOSE', 0)} | {c['quantize']} / {c['requantize']} | "
                  f"{c['dequantize']} / {c['dequantize_weights']} | {sum(h32.values())} / {sum(h8.values())} | {lat} |",
                  flush=True)


if __name__ == "__main__":
    main()
