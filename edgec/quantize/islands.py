"""Float islands: tensors one int8 scale cannot carry, found from the calibrated ranges before any search.

int8 activations have one scale per tensor. Two patterns break that, and the per-node sensitivity search cannot
find either, because the damage only goes away when two or more nodes stay float together:

- per-channel normalization of a tensor whose channels have very different spreads (DenseNet: a
  BatchNormalization after every Concat of earlier layers' outputs). The tensor's scale leaves the quiet
  channels a few int8 steps, and the normalization then scales that rounding up to the size of the signal.
  Measured on calibration samples: per channel, the rounding error power over the channel's variance.
- a Concat of inputs with very different ranges (a detector's box coordinates in pixels next to 0..1 scores):
  the smaller input keeps only a few levels of the shared scale.

Each such tensor stays float: the normalization and the Concat (or cheap op) that produces it, and every other
reader of it (ONNX Runtime's QDQ quantizer routes all readers through one Q/DQ pair if any reader is quantized,
so the tensor only stays float when no reader needs it int8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

from edgec.quantize.activations import run_named, session_with_outputs

# mean over channels of rounding-error power / channel variance above which a normalized tensor stays float:
# 1% is 20 dB, where a well-spread tensor's int8 rounding is ~45 dB (densenet121 ranges 1e-3 .. 0.4)
MAX_NOISE_RATIO = 0.01
# a Concat input whose range is under this fraction of the output's keeps fewer than ~8 of the 256 levels
MIN_RANGE_FRACTION = 1 / 32
NORMALIZING = ("BatchNormalization",)
# ops that move or pick values without weights: cheap to run float, and they share their input's int8 scale
CHEAP = ("Concat", "MaxPool", "AveragePool", "Relu", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
         "Identity", "Slice", "Split", "Gather")
# readers that pass the same values on: the tensor they write needs the same float treatment
MOVES = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Slice", "Split", "Gather")
INT8_LEVELS = 255  # QInt8 activations: -128..127


def read_ranges(cache: Path) -> dict[str, tuple[float, float]]:
    """Tensor -> (min, max) from ONNX Runtime's calibration cache (its TensorsData JSON); {} if unreadable."""
    try:
        data = json.loads(Path(cache).read_text())["data"]
        return {name: (float(v["lowest"]["data"][0]), float(v["highest"]["data"][0])) for name, v in data.items()}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return {}


def fake_quant(x: np.ndarray, lo: float, hi: float) -> np.ndarray | None:
    """x through int8 quantize/dequantize with the scale and zero point ORT derives from (lo, hi)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / INT8_LEVELS
    if not scale > 0:
        return None
    zp = np.round(-128 - lo / scale)
    return (np.clip(np.round(x / scale) + zp, -128, 127) - zp) * scale


def channel_noise_ratio(x: np.ndarray, lo: float, hi: float) -> float:
    """Mean over channels (axis 1) of int8 rounding-error power / channel variance, each capped at 1."""
    fq = fake_quant(x.astype(np.float64), lo, hi)
    if fq is None or x.ndim < 2:
        return 0.0
    axes = tuple(i for i in range(x.ndim) if i != 1)
    err = ((fq - x) ** 2).mean(axis=axes)
    var = x.astype(np.float64).var(axis=axes)
    ratio = np.where(err == 0, 0.0, err / np.maximum(var, 1e-30))  # exact (e.g. all-zero) channels lose nothing
    return float(np.minimum(ratio, 1.0).mean())


def find_islands(model: onnx.ModelProto, ranges: dict[str, tuple[float, float]], feeds: list[dict],
                 skip: set[str] = frozenset()) -> dict[str, str]:
    """Node name -> why it stays float. `feeds` are calibration samples; `skip` nodes are float already."""
    producer = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    why: dict[str, str] = {}

    def island(tensor: str) -> list[onnx.NodeProto] | None:
        """The readers of `tensor`, and of what data-movement readers pass on; None if one of them needs int8."""
        nodes = []
        for r in readers.get(tensor, []):
            if r.op_type in MOVES:
                more = [island(o) for o in r.output]
                if any(m is None for m in more):
                    return None
                nodes += [r, *(n for m in more for n in m)]
            elif r.op_type in CHEAP + NORMALIZING:
                nodes.append(r)
            else:
                return None
        return nodes

    def keep_float(tensor: str, reason: str) -> None:
        """The tensor's producer and readers stay float, if all of them can (else int8 cannot be avoided)."""
        prod = producer.get(tensor)
        nodes = island(tensor) if prod is not None and prod.op_type in CHEAP else None
        for n in [prod, *nodes] if nodes is not None else []:
            if n.name not in skip:
                why.setdefault(n.name, reason)

    normalized = [n for n in model.graph.node if n.op_type in NORMALIZING and n.input[0] in ranges]
    if normalized and feeds:
        sess = session_with_outputs(model, sorted({n.input[0] for n in normalized}))
        runs = [run_named(sess, f) for f in feeds]
        for n in normalized:
            t = n.input[0]
            x = np.concatenate([r[t] for r in runs], axis=0)
            ratio = channel_noise_ratio(x, *ranges[t])
            if ratio > MAX_NOISE_RATIO:
                keep_float(t, f"its input's int8 rounding is {ratio:.1%} of the per-channel signal the "
                              f"{n.op_type} normalizes (one scale for channels of very different spread)")
    for n in model.graph.node:
        if n.op_type != "Concat" or any(i not in ranges for i in n.input) or n.output[0] not in ranges:
            continue
        span = lambda t: max(ranges[t][1], 0.0) - min(ranges[t][0], 0.0)  # noqa: E731
        out, least = span(n.output[0]), min(span(i) for i in n.input)
        if out > 0 and least / out < MIN_RANGE_FRACTION:
            keep_float(n.output[0], f"mixed-range Concat: an input spans {least:.3g} of the output's {out:.3g}")
    return why
