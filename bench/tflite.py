"""TFLite build bench: per model, edgec build time, .tflite size, and LiteRT (XNNPACK) latency against ONNX Runtime
on the original .onnx (ORT_ENABLE_ALL), both measured in the same run on this host.

    python bench/tflite.py [--models squeezenet,resnet50] [--zoo mobilenet_v2,...] [--runs 20] [--threads 2]
                           [--quantize fp16] [--all]

Prints a Markdown table; a latency ratio > 1 means LiteRT is slower than ONNX Runtime on the original model.
Light models are the random-weight copies (edgec.samples); --zoo adds torch-exported models from tests/zoo.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.zoo lives next to edgec

from edgec import api, samples  # noqa: E402
from edgec.graph.inputs import input_specs, random_inputs  # noqa: E402
from edgec.validate.timing import summarize, time_runs  # noqa: E402
from edgec.runtimes.host_litert import LiteRTRunner  # noqa: E402
from edgec.runtimes.host_ort import OrtRunner  # noqa: E402


def bench_model(name: str, model_path: Path, runs: int, threads: int, quantize: str | None) -> dict:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        outcome = api.build(model_path, api.BuildOptions(target="android", out_dir=Path(out), model_name=name,
                                                         validate=False, quantize=quantize, parallel=False))
        build_s = time.perf_counter() - t0
        if not outcome.result or not outcome.result.artifacts:
            return {"model": name, "error": "; ".join(str(f.error) for f in outcome.failures)[:200]}
        art = outcome.result.artifacts[0]
        model = onnx.load(str(model_path))
        feeds = random_inputs(input_specs(model), seed=0, samples=1)[0]
        base_runner = OrtRunner(model_path, threads=threads, level="all")
        ours_runner = LiteRTRunner(art.final_path, threads=threads)
        base = summarize(time_runs(lambda: base_runner.run(feeds), runs, 3), "host", threads, None, "median", "ort")
        ours = summarize(time_runs(lambda: ours_runner.run(feeds), runs, 3), "host", threads, None, "median", "litert")
        cpu = art.artifact.details.get("xnnpack", {}).get("cpu", {})
        return {"model": name, "build_s": build_s, "mb": art.bytes / 1e6, "onnx_ms": base.median_ms,
                "litert_ms": ours.median_ms, "ratio": ours.median_ms / base.median_ms,
                "noisy": base.noisy or ours.noisy, "cpu_ops": ", ".join(f"{k} x{v}" for k, v in cpu.items()) or "-"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="squeezenet,shufflenet,inception_v1,inception_v2,densenet121,resnet50")
    ap.add_argument("--zoo", default="", help="comma-separated tests/zoo.py models (builds the zoo on first use)")
    ap.add_argument("--all", action="store_true", help="all nine light models, including the big ones")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quantize", default=None, help="none|fp16 (int8 is not lowered to TFLite yet)")
    args = ap.parse_args()
    models = [(n, samples.randomized(n)) for n in (list(samples.LIGHT_MODELS) if args.all else args.models.split(",")) if n]
    if args.zoo:
        from tests.zoo import zoo_model
        models += [(n, zoo_model(n)) for n in args.zoo.split(",")]
    print(f"threads={args.threads} runs={args.runs} quantize={args.quantize or 'none'}")
    print("| model | build s | .tflite MB | ONNX Runtime ms | LiteRT ms | latency ratio | ops not on XNNPACK |")
    print("|---|---|---|---|---|---|---|")
    for name, path in models:
        r = bench_model(name, path, args.runs, args.threads, args.quantize)
        if "error" in r:
            print(f"| {name} | failed: {r['error']} | | | | | |", flush=True)
            continue
        noisy = " (noisy)" if r["noisy"] else ""
        print(f"| {r['model']} | {r['build_s']:.2f} | {r['mb']:.1f} | {r['onnx_ms']:.2f} | {r['litert_ms']:.2f} | "
              f"{r['ratio']:.2f}{noisy} | {r['cpu_ops']} |", flush=True)


if __name__ == "__main__":
    main()
