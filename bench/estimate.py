"""How good is the roofline? Estimate this machine (host profile) and measure it, per model and runtime.

    python bench/estimate.py [--cpu-time [--runtime ort|litert|both]] [--profile host.yaml | --detect]
                             [--models squeezenet,resnet50] [--runs 20] [--zoo]

--cpu-time (what emulate mode does): this machine's cached calibration (edgec.validate.hostcache, measured on first
use), one thread, the CPU time of each run (which other work on the machine does not stretch), for ONNX Runtime
on the prepared graph and/or LiteRT on the .tflite edgec lowers from it. Without it: wall clock at all cores
against a host profile (--profile), or calibrated around each round (--detect). Prints one row per model
(estimate, measured median, error) and the median absolute error; the goal is <= 30%. The machine's load
average is printed: other work inflates wall-clock medians. --published then prints the device table (edgec's
estimate on the built-in phone/board profiles beside published latencies, bench/published.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/published.py

from edgec.config.loader import load_profile  # noqa: E402
from edgec.config.models import Profile  # noqa: E402
from edgec.graph.load import load_model  # noqa: E402
from edgec.prepare import prepare  # noqa: E402
from edgec.validate import hostcal  # noqa: E402
from edgec.validate.estimate import estimate  # noqa: E402
from edgec.graph.inputs import input_specs, random_inputs  # noqa: E402
from edgec.validate.timing import time_runs  # noqa: E402
from edgec.runtimes.host_ort import OrtRunner  # noqa: E402

LIGHT = ["squeezenet", "shufflenet", "inception_v1", "inception_v2", "densenet121", "resnet50"]


def _models(names: list[str], zoo: bool) -> list[tuple[str, Path, dict]]:
    from edgec.samples import randomized

    out = [(n, randomized(n), {}) for n in names]
    if zoo:
        try:
            from tests.zoo import INPUT_SHAPES, ZOO, zoo_model
        except ImportError:
            print("tests/zoo.py not available: torch exports skipped")
            return out
        out += [(n, zoo_model(n), {"input": list(INPUT_SHAPES[n])}) for n in ZOO]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default=None,
                    help="host profile YAML or name (default: the user's detected one, else built-in host)")
    ap.add_argument("--detect", action="store_true",
                    help="calibrate right before each timing (interleaved rounds) instead of reading a profile")
    ap.add_argument("--models", default=",".join(LIGHT))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds per model (the median round counts)")
    ap.add_argument("--zoo", action="store_true", help="also the torch exports of tests/zoo.py")
    ap.add_argument("--cpu-time", action="store_true", help="one thread, CPU time, the cached calibration")
    ap.add_argument("--runtime", default="both", choices=["ort", "ort-extended", "litert", "both", "all"],
                    help="with --cpu-time: ort = level 'all' on the ONNX graph, ort-extended = level 'extended' "
                         "(what an .ort artifact runs), both = ort + litert, all = the three")
    ap.add_argument("--published", action="store_true",
                    help="then the device table: the estimate on the built-in phone/board profiles beside published "
                         "latencies (bench/published.py, sources in bench/published_latency.yaml)")
    args = ap.parse_args()
    code = _cpu_time_table(args) if args.cpu_time else _wall_clock_table(args)
    if args.published:
        from published import device_table

        print("\ndevice estimates vs published figures (bench/published.py):")
        device_table()
    return code


def _wall_clock_table(args) -> int:

    loads = [os.getloadavg()[0]]
    threads = os.cpu_count() or 1
    fixed = None if args.detect else load_profile(args.profile or str(_default_host()))
    if fixed is not None:
        threads = min(fixed.runtime.threads, threads)
        print(f"host profile {fixed.name}: peak {fixed.hardware.cpu.peak_gflops_fp32} GFLOP/s, "
              f"{fixed.hardware.memory_bandwidth_gbps} GB/s")
    else:
        print("host profile: calibrated (edgec.validate.hostcal) right before and right after each timing round "
              "(estimate = geometric mean of the two), so the estimate and the run see the same machine load")
    print(f"{threads} threads, {args.rounds} rounds x {args.runs} runs per model")
    print(f"{'model':22} {'GFLOP':>7} {'estimate ms':>12} {'median ms':>10} {'error':>8}   per-round errors")
    errors = []
    for name, path, shapes in _models(args.models.split(","), args.zoo):
        prepared = prepare(load_model(path), shapes, str(path))
        runner = OrtRunner(prepared.model, threads=threads, level="all")
        feeds = random_inputs(input_specs(prepared.model), seed=0, samples=1)[0]
        rows = []
        before = _estimate_ms(prepared.model, fixed, threads)
        for _ in range(args.rounds):
            measured = float(np.median(time_runs(lambda: runner.run(feeds), args.runs, 3)))
            after = _estimate_ms(prepared.model, fixed, threads)
            # calibrations just before and just after the timing bracket it: the load drifts in between
            est_ms = float(np.sqrt(before * after))
            rows.append((est_ms, measured, (est_ms - measured) / measured))
            before = after
            loads.append(os.getloadavg()[0])
        gflop = estimate(prepared.model, fixed or load_profile("host"), threads=threads).gflop  # profile-independent
        est_ms, measured, err = sorted(rows, key=lambda r: r[2])[len(rows) // 2]  # the median round
        errors.append(abs(err))
        per = " ".join(f"{r[2]:+.0%}" for r in rows)
        print(f"{name:22} {gflop:7.3f} {est_ms:12.2f} {measured:10.2f} {err:+8.1%}   {per}")
    print(f"median absolute error (estimate vs measured median): {np.median(errors):.1%} over {len(errors)} models "
          f"(goal <= 30%)")
    print(f"1-minute load average during the run: min {min(loads):.2f}, max {max(loads):.2f} on {os.cpu_count()} cores")
    return 0


def _cpu_time_table(args) -> int:
    """One thread, CPU time, against this machine's cached calibration: the error emulate mode carries. Two
    estimates per row, same run: 'common' = the calibration's one set of coefficients (hostcal, ONNX Runtime
    micro-benchmarks; what every runtime used before costfit), 'fitted' = the coefficients fitted in that
    runtime (edgec.validate.costfit)."""
    from edgec.validate.hostcache import calibrated
    from edgec.validate.latency import measure_cpu_time

    entry = calibrated()
    common = load_profile(str(entry.profile_path))
    runtimes = {"both": ["ort", "litert"], "all": ["ort", "ort-extended", "litert"]}.get(args.runtime, [args.runtime])
    fitted = {rt: load_profile(str(entry.profile_for(rt))) for rt in runtimes}
    print(f"host profile: {entry.describe()}")
    print(f"1 thread, CPU time, median of {args.runs} runs; load average {os.getloadavg()[0]:.2f}")
    print(f"{'model':22} {'runtime':12} {'GFLOP':>7} {'median ms':>10} {'common ms':>10} {'error':>8} "
          f"{'fitted ms':>10} {'error':>8}")
    errors: dict[str, list[tuple[float, float]]] = {r: [] for r in runtimes}
    for name, path, shapes in _models(args.models.split(","), args.zoo):
        prepared = prepare(load_model(path), shapes, str(path))
        before = estimate(prepared.model, common, threads=1)
        feeds = random_inputs(input_specs(prepared.model), seed=0, samples=1)[0]
        for rt in runtimes:
            after = estimate(prepared.model, fitted[rt], threads=1)
            runner = (_litert(prepared.model) if rt == "litert" else
                      OrtRunner(prepared.model, threads=1, level="all" if rt == "ort" else "extended"))
            measured, _ = measure_cpu_time(runner, feeds, args.runs, 3)
            m = measured.median_ms
            e0, e1 = (before.total_ms - m) / m, (after.total_ms - m) / m
            errors[rt].append((abs(e0), abs(e1)))
            print(f"{name:22} {rt:12} {before.gflop:7.3f} {m:10.2f} {before.total_ms:10.2f} {e0:+8.1%} "
                  f"{after.total_ms:10.2f} {e1:+8.1%}", flush=True)
    for rt, errs in errors.items():
        e0, e1 = np.median([e[0] for e in errs]), np.median([e[1] for e in errs])
        print(f"{rt}: median absolute error over {len(errs)} models: common {e0:.1%}, fitted {e1:.1%} (goal <= 30%)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


def _litert(model):
    """LiteRT at one thread on the .tflite edgec lowers from `model` (a temporary file)."""
    import tempfile

    from edgec.artifact import LowerContext
    from edgec.config.loader import load_target
    from edgec.lower.backend import get_backend

    stage = Path(tempfile.mkdtemp(prefix="edgec-bench-"))
    ctx = LowerContext(target=load_target("android"), profile=load_profile("pixel-8"), model_name="m",
                       staging_dir=stage)
    backend = get_backend("tflite")
    return backend.runner(backend.lower(model, ctx), 1)


def _estimate_ms(model, fixed, threads: int) -> float:
    host = fixed or Profile.model_validate(hostcal.profile_from(hostcal.measure(threads), threads))
    return estimate(model, host, threads=threads).total_ms


def _default_host() -> Path:
    user = hostcal.user_host_profile()
    return user if user.exists() else Path("host")


if __name__ == "__main__":
    sys.exit(main())
