"""Sequence zoo per target: build result, min output cosine vs ONNX Runtime on the original, build seconds, and
host latency of the artifact as a ratio to ONNX Runtime on the original model, measured in the same run.

    EDGEC_CACHE_DIR=... python bench/sequence.py [--models text_encoder,streaming_vad] [--targets android,ios]

ios has no CoreML runtime off macOS: its latency is the roofline estimate for the profile's phone (mode column),
not a measurement, so its ratio is not comparable with the measured host rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edgec import api  # noqa: E402
from edgec.errors import EdgecError, UnsupportedOp  # noqa: E402
from edgec.runtimes.host_ort import OrtRunner  # noqa: E402
from tests.zoo import SEQ_ZOO, seq_inputs, zoo_model  # noqa: E402

VALUES = {"streaming_vad": ["sr=16000"]}


def _ort_median_ms(path: Path, feeds: dict, runs: int = 50) -> float:
    runner = OrtRunner(str(path), threads=1)
    for _ in range(5):
        runner.run(feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        runner.run(feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(SEQ_ZOO))
    ap.add_argument("--targets", default="ort-mobile,android,ios")
    args = ap.parse_args()
    print(f"{'model':16s} {'target':11s} {'result':9s} {'min cos':>9s} {'build s':>8s} {'host ms':>8s} "
          f"{'ORT ms':>7s} {'ratio':>6s} latency mode")
    for name in args.models.split(","):
        path = zoo_model(name)
        feeds = seq_inputs(name)
        for v in VALUES.get(name, []):
            feeds.pop(v.split("=")[0], None)
        ort_ms = None
        for target in args.targets.split(","):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                try:
                    outcome = api.build(path, api.BuildOptions(target=target, out_dir=Path(out), latency="host",
                                                               input_values=VALUES.get(name, [])))
                except UnsupportedOp as e:
                    roots = ",".join(sorted({op for op, _, _ in e.roots}))
                    print(f"{name:16s} {target:11s} refused   ({roots})")
                    continue
                except EdgecError as e:
                    print(f"{name:16s} {target:11s} error     {e.kind}: {str(e)[:80]}")
                    continue
                build_s = time.perf_counter() - t0
                art = json.loads((Path(out) / "manifest.json").read_text())["artifacts"][0]
                cos = min(m["cosine"] for m in art["numerics"]["outputs"].values())
                host = art["latency"]["median_ms"] if art.get("latency") else float("nan")
                if ort_ms is None:  # ORT on the original, fixed inputs fed, same process and run
                    full = seq_inputs(name)
                    ort_ms = _ort_median_ms(path, full)
                result = "pass" if outcome.ok else "FAIL"
                mode = art["latency"].get("mode", "?") if art.get("latency") else "-"
                print(f"{name:16s} {target:11s} {result:9s} {cos:9.6f} {build_s:8.1f} {host:8.3f} {ort_ms:7.3f} "
                      f"{host / ort_ms:6.2f} {mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
