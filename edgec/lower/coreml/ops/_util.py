"""Small helpers shared by the op families: ONNX pads -> MIL pads, axes, static-shape checks."""

from __future__ import annotations


import numpy as np

from edgec.lower.coreml.registry import NodeView


def spatial_pads(n: NodeView, in_spatial: list[int], kernel: list[int], strides: list[int],
                 dilations: list[int]) -> list[tuple[int, int]]:
    """(begin, end) per spatial axis, with auto_pad resolved against the static input shape."""
    begin, end = n.pads(in_spatial, kernel, strides, dilations)
    return list(zip(begin, end))


def mil_pad(pairs: list[tuple[int, int]]) -> np.ndarray:
    """ONNX keeps all begins then all ends; MIL wants begin/end interleaved per axis."""
    return np.array([p for pair in pairs for p in pair], dtype=np.int32)


def check_auto_pad(n: NodeView) -> str | None:
    auto = n.attr("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        return f"auto_pad={auto} is not an ONNX value"
    if auto != "NOTSET" and n.shape(0) is None:
        return f"auto_pad={auto} needs a static input shape"
    return None


def norm_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def need_shape(n: NodeView, i: int = 0) -> str | None:
    return None if n.shape(i) is not None else f"input '{n.inputs[i]}' has no static shape (fix input shapes first)"


def need_const(n: NodeView, i: int, what: str) -> str | None:
    if n.has(i) and n.const(i) is None:
        return f"{what} (input '{n.inputs[i]}') must be a constant; CoreML takes it as a fixed parameter"
    return None


def first(*whys: str | None) -> str | None:
    return next((w for w in whys if w), None)


def like(var, value) -> np.ndarray:
    """A scalar constant of `var`'s MIL dtype (MIL binary ops take one dtype; fp16 stays fp16)."""
    from coremltools.converters.mil.mil import types

    return np.array(value, dtype=types.nptype_from_builtin(var.dtype))
