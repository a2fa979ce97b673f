"""What the per-target worker process (edgec/worker.py) costs: `edgec build` of a sample in-process
(EDGEC_ISOLATE=0), with a spawned worker (a library caller's) and with a forked one (the CLI's default),
alternated, in the same run.

    python bench/isolation.py --sample squeezenet --rounds 3 [--target android]

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


MODES = {"in-process": {"EDGEC_ISOLATE": "0"}, "spawned worker": {"EDGEC_WORKER_START": "spawn"},
         "forked worker": {"EDGEC_WORKER_START": "fork"}}


def run(sample: str, mode: str, extra: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEC_NO_CACHE": "1", **MODES[mode]}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "edgec.cli", "build", "--sample", sample, "--out", out,
                        *extra], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", default="squeezenet")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency", default="off", help="passed to --latency (off keeps the comparison to lowering + numerics)")
    ap.add_argument("--target", default="all")
    args = ap.parse_args()
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    for r in range(args.rounds):
        for mode in MODES:
            times[mode].append(run(args.sample, mode, ["--target", args.target, "--latency", args.latency]))
            print(f"round {r + 1} {mode:15s}: wall {times[mode][-1][0]:.2f} s, cpu {times[mode][-1][1]:.2f} s",
                  flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    base = med["in-process"]
    for mode, (wall, cpu) in med.items():
        print(f"median {mode:15s}: wall {wall:.2f} s, cpu {cpu:.2f} s; vs in-process wall {wall / base[0]:.2f}x, "
              f"cpu {cpu / base[1]:.2f}x")


if __name__ == "__main__":
    main()
