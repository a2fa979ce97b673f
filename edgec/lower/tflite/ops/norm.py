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


def _reduce(ctx: LowerCtx, code: str, x: int, axes, shape, tag: str) -> int:
    opts = S.ReducerOptionsT()
    opts.keepDims = True
    out = tuple(1 if i in axes else d for i, d in enumerate(shape))
    t = ctx.temp(out, tag=tag)
    ctx.emit(code, [x, ctx.constant(np.array(sorted(axes), np.int32), f"{tag}_axes")], [t], opts)
    return t


def _binary(ctx: LowerCtx, code: str, a: int, b: int, shape, tag: str, out: int | None = None) -> int:
    t = ctx.temp(shape, tag=tag) if out is None else out
    opts = {"ADD": S.AddOptionsT, "SUB": S.SubOptionsT, "MUL": S.MulOptionsT, "DIV": S.DivOptionsT}[code]()
    ctx.emit(code, [a, b], [t], opts)
    return t


def _param(ctx: LowerCtx, i: int, rank: int, shape=None) -> int:
    c = ctx.const(i)
    if c is None and shape is not None and tuple(ctx.shape(i)) != tuple(shape):
        t = ctx.temp(shape, tag=f"p{i}")
        ctx.emit("RESHAPE", [ctx.input(i), ctx.constant(np.array(shape, np.int32), "pshape")], [t])
        return t
    if c is None:
        return ctx.input(i)
    c = c.astype(np.float32)
    return ctx.constant(c.reshape(shape) if shape is not None else c.reshape((1,) * (rank - c.ndim) + c.shape), f"p{i}")


def _float32(ctx: LowerCtx) -> None:
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")


@lowers("RMSNormalization")
def rms_norm(ctx: LowerCtx) -> None:
    """x * rsqrt(mean(x^2 over [axis, rank)) + eps) * scale."""
    _float32(ctx)
    shape = ctx.shape(0)
    rank = len(shape)
    axis = int(ctx.attr("axis", -1))
    axis = axis + rank if axis < 0 else axis
    x = ctx.input(0)
    sq = _binary(ctx, "MUL", x, x, shape, "sq")
    ms = _reduce(ctx, "MEAN", sq, range(axis, rank), shape, "mean_sq")
    stat = tuple(1 if i >= axis else d for i, d in enumerate(shape))
    eps = ctx.constant(np.full((1,) * rank, float(ctx.attr("epsilon", 1e-5)), np.float32), "eps")
    inv = ctx.temp(stat, tag="inv_rms")
    ctx.emit("RSQRT", [_binary(ctx, "ADD", ms, eps, stat, "ms_eps")], [inv])
    normed = _binary(ctx, "MUL", x, inv, shape, "normed")
    _binary(ctx, "MUL", normed, _param(ctx, 1, rank), shape, "y", out=ctx.output(0))


@lowers("MeanVarianceNormalization")
def mean_variance_norm(ctx: LowerCtx) -> None:
    """(x - mean) / sqrt(var + 1e-9) over `axes` (default N, H, W)."""
    _float32(ctx)
    shape = ctx.shape(0)
    rank = len(shape)
    axes = [int(a) + rank if int(a) < 0 else int(a) for a in ctx.attr("axes", [0, 2, 3])]
    x = ctx.input(0)
    mean = _reduce(ctx, "MEAN", x, axes, shape, "mean")
    d = _binary(ctx, "SUB", x, mean, shape, "centered")
    var = _reduce(ctx, "MEAN", _binary(ctx, "MUL", d, d, shape, "sq"), axes, shape, "var")
    stat = tuple(1 if i in axes else s for i, s in enumerate(shape))
    std = ctx.temp(stat, tag="std")
    ctx.emit("SQRT", [var], [std])
    std_eps = _binary(ctx, "ADD", std, ctx.constant(np.full((1,) * rank, 1e-9, np.float32), "eps"), stat, "std_eps")
    _binary(ctx, "DIV", d, std_eps, shape, "y", out=ctx.output(0))


@lowers("LpNormalization")
def lp_norm(ctx: LowerCtx) -> None:
    """x / ||x||_p along `axis` (p = 1: SUM(ABS); p = 2: SQRT(SUM(x^2))); 0 where the norm is 0."""
    _float32(ctx)
    shape = ctx.shape(0)
    rank = len(shape)
    axis = int(ctx.attr("axis", -1))
    axis = axis + rank if axis < 0 else axis
    p = int(ctx.attr("p", 2))
    if p not in (1, 2):
        ctx.unsupported(f"p={p} (1 and 2 are lowered)")
    x = ctx.input(0)
    if p == 1:
        a = ctx.temp(shape, tag="abs")
        ctx.emit("ABS", [x], [a])
        norm = _reduce(ctx, "SUM", a, [axis], shape, "l1")
    else:
        s = _reduce(ctx, "SUM", _binary(ctx, "MUL", x, x, shape, "sq"), [axis], shape, "sum_sq")
        norm = ctx.temp(ctx.b.tensors[s].shape, tag="l2")
        ctx.emit("SQRT", [s], [norm])
    q = _binary(ctx, "DIV", x, norm, shape, "quotient")
    nshape = ctx.b.tensors[norm].shape
    zero = ctx.temp(nshape, np.bool_, "zero_norm")
    ctx.emit("EQUAL", [norm, ctx.constant(np.zeros((1,) * rank, np.float32), "zero")], [zero])
    ctx.emit("SELECT_V2", [zero, ctx.constant(np.zeros((1,) * rank, np.float32), "zero_out"), q], [ctx.output(0)])


@lowers("InstanceNormalization", "GroupNormalization")
def instance_group_norm(ctx: LowerCtx) -> None:
    """Per (sample, group) mean/variance over (C/G, spatial) on an (N, G, C/G * spatial) view, then the
    per-channel scale/bias. InstanceNormalization is G = C. Runs on the ONNX (channels-first) layout."""
    _float32(ctx)
    shape = ctx.shape(0)
    if ctx.nhwc:
        ctx.unsupported("internal: expected channels-first data")
    n, c = shape[0], shape[1]
    groups = c if ctx.node.op == "InstanceNormalization" else int(ctx.attr("num_groups"))
    if c % groups:
        ctx.unsupported(f"{c} channels do not split into {groups} groups")
    if ctx.node.op == "GroupNormalization" and ctx.opset < 21:
        ctx.unsupported("GroupNormalization before opset 21 (per-group scale/bias) is not lowered")
    eps = float(ctx.attr("epsilon", 1e-5))
    spatial = int(np.prod(shape[2:]))
    view = (n, groups, (c // groups) * spatial)
    x = ctx.temp(view, tag="grouped")
    ctx.emit("RESHAPE", [ctx.input(0), ctx.constant(np.array(view, np.int32), "view")], [x])
    mean = _reduce(ctx, "MEAN", x, [2], view, "mean")
    d = _binary(ctx, "SUB", x, mean, view, "centered")
    var = _reduce(ctx, "MEAN", _binary(ctx, "MUL", d, d, view, "sq"), [2], view, "var")
    inv = ctx.temp((n, groups, 1), tag="inv_std")
    ctx.emit("RSQRT", [_binary(ctx, "ADD", var, ctx.constant(np.full((1, 1, 1), eps, np.float32), "eps"),
                                (n, groups, 1), "var_eps")], [inv])
    normed = _binary(ctx, "MUL", d, inv, view, "normed")
    back = ctx.temp(shape, tag="normed_nc")
    ctx.emit("RESHAPE", [normed, ctx.constant(np.array(shape, np.int32), "shape")], [back])
    pshape = (1, c) + (1,) * (len(shape) - 2)
    scaled = _binary(ctx, "MUL", back, _param(ctx, 1, len(shape), pshape), shape, "scaled")
    _binary(ctx, "ADD", scaled, _param(ctx, 2, len(shape), pshape), shape, "y", out=ctx.output(0))
