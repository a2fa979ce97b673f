"""Seeded validation inputs, so reference and artifact see exactly the same tensors."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgec.graph.shapes import dims_of, real_inputs


def input_specs(model: onnx.ModelProto) -> list[tuple[str, np.dtype, list[int]]]:
    """(name, numpy dtype, static shape) of every real input. Shapes must already be fixed."""
    specs = []
    for value in real_inputs(model):
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        specs.append((value.name, dtype, [int(d) for d in dims_of(value)]))
    return specs


def random_inputs(specs, seed: int, samples: int) -> list[dict[str, np.ndarray]]:
    """`samples` feeds: floats ~ N(0, 1); integers in [0, 10) (indices stay in range of most tables); bools 50/50."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(samples):
        feed = {}
        for name, dtype, shape in specs:
            if np.issubdtype(dtype, np.floating):
                feed[name] = rng.standard_normal(shape).astype(dtype)
            elif dtype == np.bool_:
                feed[name] = rng.random(shape) < 0.5
            else:
                feed[name] = rng.integers(0, 10, size=shape).astype(dtype)
        feeds.append(feed)
    return feeds
