"""edgec's device estimates against published latencies (bench/published_latency.yaml).

    python bench/published.py [--data bench/published_latency.yaml] [--all]

For every figure with an edgec model: the roofline estimate (edgec.validate.estimate) of that model on the
figure's profile, at the published input size and thread count, beside the published ms; then the median
|estimate - published| / published over the figures marked comparable. --all also prints the figures without
an edgec model (listed for their source, e.g. an ONNX Runtime / ncnn pair on the same board).
Needs the torch test zoo (tests/zoo.py builds it once) for the zoo models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgec.config.loader import load_profile  # noqa: E402
from edgec.prepare import prepare  # noqa: E402
from edgec.validate.estimate import estimate  # noqa: E402

DATA = Path(__file__).with_name("published_latency.yaml")


def model_path(name: str) -> Path:
    """A tests/zoo.py export, else a light sample (random weights: latency does not depend on them)."""
    from edgec.samples import LIGHT_MODELS, randomized

    if name in LIGHT_MODELS:
        return randomized(name)
    from tests.zoo import zoo_model

    return zoo_model(name)


def load_at(path: Path, shape: list[int] | None) -> tuple[onnx.ModelProto, dict]:
    """The model with its single image input resized to `shape` (a CNN with a global pool takes any size; the
    export fixed 224, so the fixed dims and the stale value_info are dropped and re-inferred)."""
    model = onnx.load(str(path))
    if not shape:
        return model, {}
    inp = model.graph.input[0]
    for d in inp.type.tensor_type.shape.dim:
        d.ClearField("dim_value")
        d.dim_param = "d"
    del model.graph.value_info[:]
    return model, {inp.name: list(shape)}


def estimate_ms(fig: dict, cache: dict) -> tuple[float, float, str]:
    """(estimate ms, GFLOP, unit) of the figure's model on its profile at its threads."""
    key = (fig["model"], tuple(fig.get("input") or ()))
    if key not in cache:
        path = model_path(fig["model"])
        model, shapes = load_at(path, fig.get("input"))
        cache[key] = prepare(model, shapes, str(path)).model
    profile = load_profile(fig["profile"])
    est = estimate(cache[key], profile, precision=fig.get("precision", "fp32"), threads=fig.get("threads"))
    return est.total_ms, est.gflop, est.unit


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--all", action="store_true", help="also list the figures without an edgec model")
    args = ap.parse_args()
    figures = yaml.safe_load(Path(args.data).read_text())["figures"]

    print(f"{'profile':16} {'model':20} {'runtime':48} {'thr':>3} {'published':>9} {'estimate':>9} "
          f"{'est/pub':>7}  source (date)")
    cache: dict = {}
    errors = []
    for fig in figures:
        if not fig.get("model"):
            continue
        est_ms, gflop, unit = estimate_ms(fig, cache)
        pub = float(fig["ms"])
        counted = fig.get("compare", True)
        if counted:
            errors.append(abs(est_ms - pub) / pub)
        mark = "" if counted else "  [not in median]"
        print(f"{fig['profile']:16} {fig['model']:20} {fig['runtime'][:48]:48} {fig.get('threads') or '-':>3} "
              f"{pub:9.2f} {est_ms:9.2f} {est_ms / pub:7.2f}  {fig['source'].split(' ')[0]} ({fig['date']})"
              f"  [{unit}, {gflop:.2f} GFLOP]{mark}")
    if errors:
        print(f"median |estimate - published| / published: {np.median(errors):.0%} over {len(errors)} figures "
              f"(range {min(errors):.0%} - {max(errors):.0%})")
    if args.all:
        print("\nfigures without an edgec model (source only):")
        for fig in figures:
            if not fig.get("model"):
                print(f"  {fig['profile']:16} {fig['published_model'][:28]:28} {fig['runtime'][:56]:56} "
                      f"{float(fig['ms']):8.2f} ms  {fig['source'].split(' ')[0]} ({fig['date']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
