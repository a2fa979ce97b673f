"""Do `emulate` and `estimate` agree? One `--latency emulate` build per model, profile and precision; the
manifest's emulated median, the device roofline estimate and their ratio (issue 20: within 30%).

    python bench/emulate_agreement.py [--models squeezenet,resnet50,inception_v1,detection_head]
                                      [--profiles pixel-8,raspberry-pi-5] [--precisions fp32,int8]
                                      [--code DIR ...]

emulate = host CPU time at one thread x (device estimate / host estimate), so emulate / estimate is the host's
measured / estimated time of what was timed: the host estimate's error on that model and runtime (pixel-8 builds
android and times LiteRT, raspberry-pi-5 builds ort-mobile and times ONNX Runtime; int8 on x86 times ONNX Runtime
on the float form). --code runs the same builds with other source trees (e.g. an export of the commit before a
change), each a column, in the same run. detection_head is the YOLO-style zoo export (tests/zoo.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _source(model: str) -> list[str]:
    if model in ("squeezenet", "resnet50", "inception_v1", "shufflenet", "densenet121", "inception_v2"):
        return ["--sample", model]
    sys.path.insert(0, str(ROOT))
    from tests.zoo import INPUT_NAME, INPUT_SHAPES, zoo_model

    shape = ",".join(str(d) for d in INPUT_SHAPES[model])
    return [str(zoo_model(model)), "--input-shape", f"{INPUT_NAME}={shape}"]


def build(code: Path, model: str, profile: str, precision: str) -> dict | None:
    target = "android" if profile == "pixel-8" else "ort-mobile"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "edgec.cli", "build", *_source(model), "--profile", profile, "--target", target,
               "--latency", "emulate", "--no-cache", "--out", str(out), "--calibration", "random",
               "-q", "int8" if precision == "int8" else "none"]
        env = {**os.environ, "PYTHONPATH": str(code), "EDGEC_NO_CACHE": "1"}
        subprocess.run(cmd, check=False, capture_output=True, env=env, cwd=tmp)
        try:
            lat = json.loads((out / "manifest.json").read_text())["artifacts"][0]["latency"]
        except (OSError, KeyError, IndexError, ValueError):
            return None
    return lat if lat and lat.get("mode") == "emulate" else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="squeezenet,resnet50,inception_v1,detection_head")
    ap.add_argument("--profiles", default="pixel-8,raspberry-pi-5")
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--code", action="append", default=[], help="source tree to build with (repeatable); "
                                                                  "default: this checkout")
    args = ap.parse_args()
    codes = [Path(c).resolve() for c in args.code] or [ROOT]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; columns: "
          + "; ".join(f"[{i}] {c}" for i, c in enumerate(codes)))
    print(f"{'profile':15} {'model':15} {'prec':5} " + " ".join(
        f"{f'[{i}] emulate':>12} {'estimate':>9} {'ratio':>6}" for i in range(len(codes))))
    worst: dict[int, list[float]] = {i: [] for i in range(len(codes))}
    for profile in args.profiles.split(","):
        for model in args.models.split(","):
            for prec in args.precisions.split(","):
                cells = []
                for i, code in enumerate(codes):
                    lat = build(code, model, profile, prec)
                    if lat is None:
                        cells.append(f"{'failed':>12} {'':>9} {'':>6}")
                        continue
                    d = lat["details"]
                    ratio = lat["median_ms"] / d["device_estimate_ms"]
                    worst[i].append(abs(ratio - 1))
                    cells.append(f"{lat['median_ms']:12.2f} {d['device_estimate_ms']:9.2f} {ratio:6.2f}")
                print(f"{profile:15} {model:15} {prec:5} " + " ".join(cells), flush=True)
    for i, errs in worst.items():
        if errs:
            inside = sum(e <= 0.3 for e in errs)
            print(f"[{i}] {inside}/{len(errs)} builds with emulate within 30% of estimate; worst |ratio - 1| "
                  f"{max(errs):.0%}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
