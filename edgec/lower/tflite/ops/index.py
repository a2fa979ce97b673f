"""Indexing: Slice (STRIDED_SLICE), Split (SPLIT / SPLIT_V), Gather (GATHER), Pad (PAD / PADV2 / MIRROR_PAD /
GATHER for edge and wrap). The layout pass has already moved axes/pads to the layout the data is in."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _const_input(ctx: LowerCtx, i: int, what: str) -> np.ndarray | None:
    """Constant value of optional input i (None when absent); a non-constant one is unsupported."""
    if not ctx.has_input(i):
        return None
    value = ctx.const(i)
    if value is None:
        ctx.unsupported(f"{what} (input '{ctx.node.inputs[i]}') must be a constant")
    return value


@lowers("int8.Slice", float_kernel=True, same_scale=True)
@lowers("Slice")
def slice_(ctx: LowerCtx) -> None:
    """STRIDED_SLICE with begin/end/strides normalised here (ONNX clamping = Python slice semantics)."""
    shape = ctx.shape(0)
    rank = len(shape)
    if ctx.opset < 10:
        starts, ends = ctx.attr("starts"), ctx.attr("ends")
        axes, steps = ctx.attr("axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts, ends = _const_input(ctx, 1, "starts"), _const_input(ctx, 2, "ends")
        axes = _const_input(ctx, 3, "axes")
        steps = _const_input(ctx, 4, "steps")
        axes = list(range(len(starts))) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
    if rank > 5:
        ctx.unsupported(f"rank {rank} > 5 (STRIDED_SLICE)")
    begin, end, strides = [0] * rank, list(shape), [1] * rank
    end_mask = 0
    for s, e, a, t in zip(starts, ends, axes, steps):
        a, t = _axis(int(a), rank), int(t)
        if t == 0:
            ctx.unsupported("step 0")
        # clamp as Python does (ints beyond int64 range stay exact in Python)
        b, f, t = slice(int(s), int(e), t).indices(shape[a])
        begin[a], end[a], strides[a] = b, f, t
        if t < 0 and f < 0:  # runs past index 0 backwards: no end index expresses that, use the mask
            end_mask |= 1 << a
    out = ctx.out_shape(0)
    if any(d == 0 for d in out):
        ctx.unsupported("the slice is empty (TFLite tensors cannot have a zero dimension)")
    opts = S.StridedSliceOptionsT()
    opts.endMask = end_mask
    ctx.emit("STRIDED_SLICE", [ctx.input(0), ctx.constant(np.array(begin, np.int32), "begin"),
                               ctx.constant(np.array(end, np.int32), "end"),
                               ctx.constant(np.array(strides, np.int32), "strides")],
             [ctx.output(0)], opts, version=4 if rank > 4 else 1)


@lowers("int8.Split", float_kernel=True, same_scale=True)
@lowers("Split")
def split(ctx: LowerCtx) -> None:
    """SPLIT for equal parts, SPLIT_V for given sizes."""
    shape = ctx.shape(0)
    axis = _axis(int(ctx.attr("axis", 0)), len(shape))
    outs = [j for j, name in enumerate(ctx.node.outputs)]
    sizes = [ctx.out_shape(j)[axis] for j in outs]
    if any(s == 0 for s in sizes):
        ctx.unsupported("a zero-sized split (TFLite tensors cannot have a zero dimension)")
    axis_t = ctx.constant(np.array(axis, np.int32), "axis")
    results = [ctx.output(j) for j in outs]
    if len(set(sizes)) == 1:
        opts = S.SplitOptionsT()
        opts.numSplits = len(sizes)
        ctx.emit("SPLIT", [axis_t, ctx.input(0)], results, opts)
    else:
        opts = S.SplitVOptionsT()
        opts.numSplits = len(sizes)
        ctx.emit("SPLIT_V", [ctx.input(0), ctx.constant(np.array(sizes, np.int32), "sizes"), axis_t], results, opts)


@lowers("Gather")
def gather(ctx: LowerCtx) -> None:
    """GATHER; negative indices wrapped (constants here, runtime ones with FLOOR_MOD)."""
    shape = ctx.shape(0)
    axis = _axis(int(ctx.attr("axis", 0)), len(shape))
    dim = shape[axis]
    idx = ctx.const(1)
    if idx is not None:
        if idx.size and (idx.min() < -dim or idx.max() >= dim):
            ctx.unsupported(f"index out of range for axis of size {dim}")
        indices = ctx.constant(np.where(idx < 0, idx + dim, idx).astype(np.int32), "indices")
    else:
        itype = ctx.dtype(1)
        if itype not in (np.dtype(np.int32), np.dtype(np.int64)):
            ctx.unsupported(f"indices dtype {itype}")
        indices = ctx.temp(ctx.shape(1), itype, "indices")
        ctx.emit("FLOOR_MOD", [ctx.input(1), ctx.constant(np.array(dim, itype), "dim")], [indices],
                 S.FloorModOptionsT())
    out = ctx.out_shape(0)
    if 0 in out:
        ctx.unsupported("the result is empty (TFLite tensors cannot have a zero dimension)")
    opts = S.GatherOptionsT()
    opts.axis = axis
    if len(ctx.shape(1)) > 0:
        return ctx.emit("GATHER", [ctx.input(0), indices], [ctx.output(0)], opts)
    # a scalar index: gather a 1-element index vector, then drop that axis (LiteRT keeps it as size 1)
    if idx is None:
        vec = ctx.temp((1,), ctx.dtype(1), "index")
        ctx.emit("RESHAPE", [indices, ctx.constant(np.array([1], np.int32), "index_shape")], [vec])
    else:
        vec = ctx.constant(np.array([int(idx) + dim if int(idx) < 0 else int(idx)], np.int32), "index")
    t = ctx.temp(shape[:axis] + (1,) + shape[axis + 1:], ctx.dtype(0), "gathered")
    ctx.emit("GATHER", [ctx.input(0), vec], [t], opts)
    ropts = S.ReshapeOptionsT()
    ropts.newShape = [int(d) for d in out]
    ctx.emit("RESHAPE", [t, ctx.constant(np.array(out, np.int32), "shape")], [ctx.output(0)], ropts)


@lowers("Pad")
def pad(ctx: LowerCtx) -> None:
    """constant: PAD / PADV2; reflect: MIRROR_PAD; edge / wrap: one GATHER per padded axis."""
    shape = ctx.shape(0)
    rank = len(shape)
    mode = ctx.attr("mode", "constant")
    if ctx.opset < 11:
        pads, value = [int(p) for p in ctx.attr("pads")], float(ctx.attr("value", 0.0))
        axes = list(range(rank))
    else:
        pads = [int(p) for p in _const_input(ctx, 1, "pads")]
        cval = _const_input(ctx, 2, "constant_value")
        value = cval.reshape(-1)[0].item() if cval is not None and cval.size else 0
        axes_in = _const_input(ctx, 3, "axes")
        axes = [_axis(int(a), rank) for a in axes_in] if axes_in is not None else list(range(rank))
    n = len(axes)
    begin, end = [0] * rank, [0] * rank
    for k, a in enumerate(axes):
        begin[a], end[a] = pads[k], pads[n + k]
    if min(begin + end) < 0:
        ctx.unsupported("negative pads (cropping)")
    paddings = np.array(list(zip(begin, end)), np.int32).reshape(rank, 2)
    x = ctx.input(0)
    if mode == "constant":
        if value == 0:
            return ctx.emit("PAD", [x, ctx.constant(paddings, "paddings")], [ctx.output(0)], S.PadOptionsT())
        v = ctx.constant(np.array([value], ctx.dtype(0)), "value")
        return ctx.emit("PADV2", [x, ctx.constant(paddings, "paddings"), v], [ctx.output(0)], S.PadV2OptionsT())
    if mode == "reflect":
        if any(b >= d or e >= d for b, e, d in zip(begin, end, shape)):
            ctx.unsupported("reflect pads must be smaller than the padded axis")
        opts = S.MirrorPadOptionsT()
        opts.mode = S.MirrorPadMode.REFLECT
        return ctx.emit("MIRROR_PAD", [x, ctx.constant(paddings, "paddings")], [ctx.output(0)], opts)
    if mode not in ("edge", "wrap"):
        ctx.unsupported(f"mode='{mode}'")
    padded = [a for a in range(rank) if begin[a] or end[a]]
    cur = list(shape)
    for i, a in enumerate(padded):
        src = np.arange(-begin[a], shape[a] + end[a])
        src = np.clip(src, 0, shape[a] - 1) if mode == "edge" else src % shape[a]
        cur[a] = len(src)
        out = ctx.output(0) if i == len(padded) - 1 else ctx.temp(tuple(cur), ctx.dtype(0), f"pad{a}")
        opts = S.GatherOptionsT()
        opts.axis = a
        ctx.emit("GATHER", [x, ctx.constant(src.astype(np.int32), f"src{a}")], [out], opts)
        x = out
    if not padded:
        ctx.alias(0, x)
