"""Normalization: BatchNormalization (inference: folded to one MUL + ADD per channel)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers


@lowers("BatchNormalization")
def batch_norm(ctx: LowerCtx) -> None:
    """MUL by scale/sqrt(var+eps) and ADD the shift (channels last when the layout pass made it NHWC)."""
    if any(ctx.node.outputs[1:]) or int(ctx.attr("training_mode", 0)):
        ctx.unsupported("training-mode BatchNormalization (running-stat outputs)")
    params = [ctx.const(i) for i in range(1, 5)]
    if any(p is None for p in params):
        ctx.unsupported("scale/bias/mean/var must be constants")
    scale, bias, mean, var = (p.astype(np.float64) for p in params)
    mul = scale / np.sqrt(var + float(ctx.attr("epsilon", 1e-5)))
    add = bias - mean * mul
    rank = len(ctx.shape(0))
    shape = (mul.size,) if ctx.nhwc or rank <= 2 else (mul.size,) + (1,) * (rank - 2)
    t = ctx.temp(ctx.out_shape(0), tag="scaled")
    ctx.emit("MUL", [ctx.input(0), ctx.constant(mul.astype(np.float32).reshape(shape), "scale")], [t], S.MulOptionsT())
    ctx.emit("ADD", [t, ctx.constant(add.astype(np.float32).reshape(shape), "shift")], [ctx.output(0)], S.AddOptionsT())
