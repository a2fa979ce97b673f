"""How good is the roofline? Estimate this machine (host profile) and measure it (ONNX Runtime), per model.

    python bench/estimate.py [--profile host.yaml | --detect] [--models squeezenet,resnet50] [--runs 20] [--zoo]

--detect measures the host first (as `edgec profiles detect` does). Prints one row per model (estimate, measured
median, error) and the median absolute error; the goal is <= 30%. The machine's load average is printed
before and after: other work on a shared machine inflates the measured medians.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgec.config.loader import load_profile  # noqa: E402
from edgec.config.models import Profile  # noqa: E402
from edgec.graph.load import load_model  # noqa: E402
from edgec.graph.prepare import prepare  # noqa: E402
from edgec.validate import hostcal  # noqa: E402
from edgec.validate.estimate import estimate  # noqa: E402
from edgec.validate.inputs import input_specs, random_inputs  # noqa: E402
from edgec.validate.latency import time_runs  # noqa: E402
from edgec.validate.runners.host_ort import OrtRunner  # noqa: E402

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
    ap.add_argument("--profile", default=None, help="host profile YAML or name (default: the user's detected one, else built-in host)")
    ap.add_argument("--detect", action="store_true", help="measure the host now instead of reading a profile")
    ap.add_argument("--models", default=",".join(LIGHT))
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--zoo", action="store_true", help="also the torch exports of tests/zoo.py")
    args = ap.parse_args()

    print(f"load average before: {os.getloadavg()}")
    if args.detect:
        host = Profile.model_validate(hostcal.detect())
    else:
        host = load_profile(args.profile or str(_default_host()))
    threads = min(host.runtime.threads, os.cpu_count() or 1)
    print(f"host profile: peak {host.hardware.cpu.peak_gflops_fp32} GFLOP/s, {host.hardware.memory_bandwidth_gbps} GB/s, "
          f"{threads} threads")
    print(f"{'model':22} {'GFLOP':>7} {'estimate ms':>12} {'measured ms':>12} {'error':>8}")
    errors = []
    for name, path, shapes in _models(args.models.split(","), args.zoo):
        prepared = prepare(load_model(path), shapes, str(path))
        est = estimate(prepared.model, host, threads=threads)
        runner = OrtRunner(prepared.model, threads=threads, level="all")
        feeds = random_inputs(input_specs(prepared.model), seed=0, samples=1)[0]
        measured = float(np.median(time_runs(lambda: runner.run(feeds), args.runs, 3)))
        err = (est.total_ms - measured) / measured
        errors.append(abs(err))
        print(f"{name:22} {est.gflop:7.3f} {est.total_ms:12.2f} {measured:12.2f} {err:+8.1%}")
    print(f"median absolute error: {np.median(errors):.1%} over {len(errors)} models (goal <= 30%)")
    print(f"load average after: {os.getloadavg()}")
    return 0


def _default_host() -> Path:
    user = hostcal.user_host_profile()
    return user if user.exists() else Path("host")


if __name__ == "__main__":
    sys.exit(main())
