"""ORT Mobile build bench: per light model, edgec build time, and host latency of the .ort artifact against
ONNX Runtime on the original .onnx (ORT_ENABLE_ALL), measured in the same run.

    python bench/ort_mobile.py [--models squeezenet,resnet50] [--runs 20] [--threads 2] [--all]

Prints a Markdown table; ratios > 1 mean the .ort artifact is slower than the original model on this host.
(The portable .ort uses EXTENDED-level optimizations: x86-only NCHWc layouts are excluded so it runs on ARM.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from edgec import api, samples
from edgec.graph.inputs import input_specs, random_inputs
from edgec.validate.timing import summarize, time_runs
from edgec.runtimes.host_ort import OrtRunner
import onnx


def bench_model(name: str, runs: int, threads: int) -> dict:
    model_path = samples.randomized(name)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        outcome = api.build(model_path, api.BuildOptions(target="ort-mobile", out_dir=Path(out), model_name=name, validate=False))
        build_s = time.perf_counter() - t0
        art = outcome.result.artifacts[0]
        model = onnx.load(str(model_path))
        feeds = random_inputs(input_specs(model), seed=0, samples=1)[0]
        t0 = time.perf_counter()
        onnx_runner = OrtRunner(model_path, threads=threads, level="all")
        onnx_load_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        ort_runner = OrtRunner(art.final_path, threads=threads, level="disable")
        ort_load_ms = (time.perf_counter() - t0) * 1e3
        base = summarize(time_runs(lambda: onnx_runner.run(feeds), runs, 3), "host", threads, None, "median", "ort")
        ours = summarize(time_runs(lambda: ort_runner.run(feeds), runs, 3), "host", threads, None, "median", "ort")
        return {
            "model": name, "build_s": build_s, "onnx_ms": base.median_ms, "ort_ms": ours.median_ms,
            "ratio": ours.median_ms / base.median_ms, "noisy": base.noisy or ours.noisy,
            "load_ratio": ort_load_ms / onnx_load_ms, "mb": art.bytes / 1e6,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="squeezenet,shufflenet,inception_v1,densenet121,resnet50")
    ap.add_argument("--all", action="store_true", help="all nine light models, including the big ones")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    names = list(samples.LIGHT_MODELS) if args.all else args.models.split(",")
    print("| model | build s | .ort MB | ONNX (ALL) ms | .ort ms | latency ratio | session-load ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        r = bench_model(name, args.runs, args.threads)
        noisy = " (noisy)" if r["noisy"] else ""
        print(f"| {r['model']} | {r['build_s']:.2f} | {r['mb']:.1f} | {r['onnx_ms']:.2f} | {r['ort_ms']:.2f} | "
              f"{r['ratio']:.2f}{noisy} | {r['load_ratio']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
