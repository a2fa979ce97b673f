"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: the target picks its class by a ONE_HOT over the
class axis (ignored targets become -1: an all-zero row), weights ride on the same one-hot, then
SUM/DIV for the reduction. SoftmaxCrossEntropyLoss adds LOG_SOFTMAX over the class axis."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers


def _op(ctx: LowerCtx, code: str, ins, shape, tag: str, opts=None, dtype=np.float32, out=None) -> int:
    t = ctx.temp(tuple(shape), dtype, tag) if out is None else out
    ctx.emit(code, list(ins), [t], opts)
    return t


def _sum(ctx: LowerCtx, x: int, axes, shape, keep: bool, tag: str, out=None) -> int:
    opts = S.ReducerOptionsT()
    opts.keepDims = keep
    red = tuple((1 if i in axes else d) for i, d in enumerate(shape)) if keep else tuple(
        d for i, d in enumerate(shape) if i not in axes)
    return _op(ctx, "SUM", [x, ctx.constant(np.array(sorted(axes), np.int32), f"{tag}_axes")], red, tag, opts, out=out)


def _flat(ctx: LowerCtx, x: int, shape, tag: str, dtype=np.float32) -> tuple[int, tuple]:
    """(N, C, d1, ..., dk) as (N, C, d1*...*dk) when k > 1 (XNNPACK's reductions stop at rank 6)."""
    if len(shape) <= 3:
        return x, tuple(shape)
    flat = tuple(shape[:2]) + (int(np.prod(shape[2:])),)
    return _op(ctx, "RESHAPE", [x, ctx.constant(np.array(flat, np.int32), f"{tag}_flat")], flat, tag, dtype=dtype), flat


def _nll(ctx: LowerCtx, logp: int, shape, target_i: int, weight_i: int | None, out: int) -> None:
    """loss from log-probabilities `logp` (N, C, d...) and the target input; writes output 0 to `out`."""
    full = tuple(shape)
    logp, shape = _flat(ctx, logp, shape, "logp")
    rank = len(shape)
    C = shape[1]
    if ctx.dtype(target_i) not in (np.dtype(np.int32), np.dtype(np.int64)):
        ctx.unsupported(f"target dtype {ctx.dtype(target_i)}")
    t, tdt = ctx.input(target_i), ctx.dtype(target_i)
    tshape = (shape[0],) + tuple(shape[2:])
    if tuple(ctx.shape(target_i)) != tshape:
        t = _op(ctx, "RESHAPE", [t, ctx.constant(np.array(tshape, np.int32), "tshape")], tshape, "target_flat", dtype=tdt)
    ignore = ctx.attr("ignore_index")
    if ignore is not None:
        hit = _op(ctx, "EQUAL", [t, ctx.constant(np.full((1,) * len(tshape), ignore, tdt), "ignore")], tshape,
                  "ignored", dtype=np.bool_)
        t = _op(ctx, "SELECT_V2", [hit, ctx.constant(np.full((1,) * len(tshape), -1, tdt), "minus1"), t], tshape,
                "target", dtype=tdt)
    oh = S.OneHotOptionsT()
    oh.axis = 1
    onehot = _op(ctx, "ONE_HOT", [t, ctx.constant(np.array(C, np.int32), "depth"),
                                  ctx.constant(np.array(1.0, np.float32), "on"),
                                  ctx.constant(np.array(0.0, np.float32), "off")], shape, "onehot", oh)
    if weight_i is not None:
        w = ctx.const(weight_i)
        wshape = (1, C) + (1,) * (rank - 2)
        if w is not None:
            wt = ctx.constant(w.astype(np.float32).reshape(wshape), "weight")
        else:
            wt = _op(ctx, "RESHAPE", [ctx.input(weight_i), ctx.constant(np.array(wshape, np.int32), "wshape")], wshape,
                     "weight")
        onehot = _op(ctx, "MUL", [onehot, wt], shape, "weighted", S.MulOptionsT())
    picked = _sum(ctx, _op(ctx, "MUL", [onehot, logp], shape, "masked", S.MulOptionsT()), [1], shape, False, "picked")
    lshape = (shape[0],) + tuple(shape[2:])
    reduction = ctx.attr("reduction", "mean")
    if reduction not in ("none", "sum", "mean"):
        ctx.unsupported(f"reduction='{reduction}'")
    if reduction == "none":
        if len(full) <= 3:
            return ctx.emit("NEG", [picked], [out])
        neg = _op(ctx, "NEG", [picked], lshape, "loss")
        return ctx.emit("RESHAPE", [neg, ctx.constant(np.array((full[0],) + full[2:], np.int32), "lshape")], [out])
    neg = _op(ctx, "NEG", [picked], lshape, "loss")
    axes = list(range(len(lshape)))
    if reduction == "sum":
        _sum(ctx, neg, axes, lshape, False, "total", out=out)
        return
    total = _sum(ctx, neg, axes, lshape, False, "total")
    wsum = _sum(ctx, onehot, list(range(rank)), shape, False, "weight_sum")
    ctx.emit("DIV", [total, wsum], [out], S.DivOptionsT())


def _float(ctx: LowerCtx) -> None:
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")


@lowers("NegativeLogLikelihoodLoss")
def nll_loss(ctx: LowerCtx) -> None:
    """-input[n, target[n, ...], ...] * weight[target], reduced (none / sum / weighted mean)."""
    _float(ctx)
    shape = ctx.shape(0)
    _nll(ctx, ctx.input(0), shape, 1, 2 if ctx.has_input(2) else None, ctx.output(0))


@lowers("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy(ctx: LowerCtx) -> None:
    """LOG_SOFTMAX over the class axis (axis 1, moved last and back), then the NLL loss; log_prob output too."""
    _float(ctx)
    shape = ctx.shape(0)
    rank = len(shape)
    outs = ctx.node.outputs
    want_logp = len(outs) > 1 and bool(outs[1])
    x, shape = _flat(ctx, ctx.input(0), shape, "scores")
    full, rank = ctx.shape(0), len(shape)
    if rank == 2:
        logp = _op(ctx, "LOG_SOFTMAX", [x], shape, "log_prob", S.LogSoftmaxOptionsT(),
                   out=ctx.output(1) if want_logp else None)
    else:
        perm = [0, *range(2, rank), 1]
        back = [perm.index(i) for i in range(rank)]
        moved = tuple(shape[p] for p in perm)
        xt = _op(ctx, "TRANSPOSE", [x, ctx.constant(np.array(perm, np.int32), "perm")], moved, "class_last",
                 S.TransposeOptionsT())
        lt = _op(ctx, "LOG_SOFTMAX", [xt], moved, "log_prob_last", S.LogSoftmaxOptionsT())
        logp = _op(ctx, "TRANSPOSE", [lt, ctx.constant(np.array(back, np.int32), "perm_back")], shape, "log_prob",
                   S.TransposeOptionsT(), out=ctx.output(1) if want_logp and shape == full else None)
        if want_logp and shape != full:
            ctx.emit("RESHAPE", [logp, ctx.constant(np.array(full, np.int32), "full")], [ctx.output(1)])
    _nll(ctx, logp, full, 1, 2 if ctx.has_input(2) else None, ctx.output(0))
