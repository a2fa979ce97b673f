"""What the per-target worker process (edgec/worker.py) costs: `edgec build --target all` of a sample with the
worker (default) and without it (EDGEC_ISOLATE=0), alternated, in the same run.

    python bench/isolation.py --sample squeezenet --rounds 3

Prints wall time and CPU time (this process's children: the build and its worker) per mode, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(sample: str, isolate: bool, extra: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEC_NO_CACHE": "1", "EDGEC_ISOLATE": "1" if isolate else "0"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "edgec.cli", "build", "--sample", sample, "--target", "all", "--out", out,
                        *extra], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", default="squeezenet")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency", default="off", help="passed to --latency (off keeps the comparison to lowering + numerics)")
    args = ap.parse_args()
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for r in range(args.rounds):
        for isolate in (False, True):
            times[isolate].append(run(args.sample, isolate, ["--latency", args.latency]))
            print(f"round {r + 1} {'worker    ' if isolate else 'in-process'}: wall {times[isolate][-1][0]:.2f} s, "
                  f"cpu {times[isolate][-1][1]:.2f} s", flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    print(f"median in-process: wall {med[False][0]:.2f} s, cpu {med[False][1]:.2f} s")
    print(f"median worker    : wall {med[True][0]:.2f} s, cpu {med[True][1]:.2f} s")
    print(f"ratio worker / in-process: wall {med[True][0] / med[False][0]:.2f}x, cpu {med[True][1] / med[False][1]:.2f}x")


if __name__ == "__main__":
    main()
