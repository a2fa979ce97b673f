"""Quantization bench: per model, target and mode, artifact size and host latency against the fp32 build of the
same model and target (measured in the same run, interleaved), and the accuracy numbers edgec reports.

    python bench/quantize.py [--models squeezenet,resnet50] [--targets ort-mobile] [--modes int8,fp16,...]
                             [--calibration random|DIR] [--samples 32] [--runs 20] [--threads 1]
                             [--zoo mobilenet_v2,...]

Models: the random-weight light models (edgec.samples.randomized), and torch-exported zoo models when
tests/zoo.py has already built them (<cache>/zoo/NAME.onnx; this bench never starts that build).
Prints a Markdown table. Size and latency ratios are mode / fp32 (< 1: smaller, faster). With random
calibration, top-1 is agreement on random inputs, not accuracy on real data.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

from edgec import api, samples
from edgec.errors import EdgecError
from edgec.lower.backend import get_backend
from edgec.validate.inputs import input_specs, random_inputs
from edgec.validate.latency import time_runs

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="squeezenet,shufflenet,inception_v1,resnet50")
    ap.add_argument("--zoo", default="", help="zoo models to add, if tests/zoo.py has built them")
    ap.add_argument("--targets", default="ort-mobile")
    ap.add_argument("--modes", default="int8,int8-dynamic,int8-weights,fp16")
    ap.add_argument("--calibration", default="random")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    models = [(n, samples.randomized(n)) for n in args.models.split(",") if n]
    for z in filter(None, args.zoo.split(",")):
        path = samples.cache_dir() / "zoo" / f"{z}.onnx"
        if path.exists():
            models.append((z, path))
        else:
            print(f"(zoo model {z} not built yet at {path}; skipped)")
    print(f"calibration: {args.calibration}, {args.samples} samples; {args.threads} thread(s), {args.runs} runs\n")
    print("| model | target | mode | size (mode / fp32) | host latency (mode / fp32) | cosine | max-abs | top-1 "
          "| gate | quantize time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, path in models:
        for row in bench(name, path, args.targets.split(","), args.modes.split(","), args):
            print(row, flush=True)


if __name__ == "__main__":
    main()
