"""Does an emulated device latency survive load? Three `--latency emulate` builds of the same model, each with
busy processes competing for every core, and the same three builds' wall-clock host medians for comparison.

    python bench/emulate_stability.py [--models squeezenet,resnet50] [--profile pixel-8] [--target android]
                                      [--hogs N] [--repeats 3]

Prints per model the three emulated medians, their max/min ratio (the goal: within 15%), and the host wall-clock
medians of the same runs (what emulate used to scale, and what the load moves).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SPIN = "import time\nend = time.time() + 600\nwhile time.time() < end: pass"


def _build(model: str, profile: str, target: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "edgec.cli", "build", "--sample", model, "--profile", profile, "--target", target,
           "--latency", "emulate", "--no-cache", "--out", str(out)]
    subprocess.run(cmd, check=False, capture_output=True, env={**os.environ, "EDGEC_NO_CACHE": "1"})
    return json.loads((out / "manifest.json").read_text())["artifacts"][0]["latency"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="squeezenet,resnet50")
    ap.add_argument("--profile", default="pixel-8")
    ap.add_argument("--target", default="android")
    ap.add_argument("--hogs", type=int, default=os.cpu_count() or 1, help="busy processes competing for the CPU")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.hogs)]
    print(f"{args.hogs} busy processes on {os.cpu_count()} cores; profile {args.profile}, target {args.target}")
    print(f"{'model':14} {'emulated medians ms':>28} {'max/min':>8}   {'host wall means ms':>28} {'max/min':>8}")
    worst = 1.0
    try:
        for model in args.models.split(","):
            emulated, wall, lows = [], [], []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    lat = _build(model, args.profile, args.target, Path(tmp) / "out")
                emulated.append(lat["median_ms"])
                lows.append(lat["min_ms"])
                wall.append(lat["details"]["load"]["wall_mean_ms"] * lat["details"]["scale"])
            ratio = max(emulated) / min(emulated)
            worst = max(worst, ratio)
            print(f"{model:14} {' '.join(f'{v:8.2f}' for v in emulated):>28} {ratio:8.2f}   "
                  f"{' '.join(f'{v:8.2f}' for v in wall):>28} {max(wall) / min(wall):8.2f}   min-based {max(lows) / min(lows):.2f}")
    finally:
        for h in hogs:
            h.kill()
    print(f"worst max/min of the emulated medians: {worst:.2f} (goal <= 1.15); the wall-clock column is the same "
          f"runs' host wall-clock mean x the same scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
