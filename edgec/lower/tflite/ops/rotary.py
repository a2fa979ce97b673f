"""RotaryEmbedding (opset 23) in the input's own layout (no transpose of the activations):
y = x * [cos, cos] + swap(x) * [-sin, sin]  over the rotated part of the head (interleaved: pairs instead of
halves), where swap exchanges the two halves (or the two members of each pair) with one constant GATHER and
cos/sin are GATHERed from the caches by position_ids."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers


def _op(ctx: LowerCtx, code: str, ins, shape, tag: str, opts=None, out=None) -> int:
    t = ctx.temp(tuple(int(d) for d in shape), np.float32, tag) if out is None else out
    ctx.emit(code, list(ins), [t], opts)
    return t


def _reshape(ctx: LowerCtx, x: int, shape, tag: str, out=None) -> int:
    return _op(ctx, "RESHAPE", [x, ctx.constant(np.array(shape, np.int32), f"{tag}_shape")], shape, tag, out=out)


def _concat(ctx: LowerCtx, parts, shape, axis: int, tag: str, out=None) -> int:
    opts = S.ConcatenationOptionsT()
    opts.axis = axis
    return _op(ctx, "CONCATENATION", parts, shape, tag, opts, out=out)


@lowers("RotaryEmbedding")
def rotary_embedding(ctx: LowerCtx) -> None:
    """x * C + swap(x) * S' (see the module docstring); 4-D (B, H, S, D) or 3-D (B, S, H*D) input."""
    for i in (0, 1, 2):
        if ctx.dtype(i) != np.float32:
            ctx.unsupported(f"input {i} dtype {ctx.dtype(i)} (float32 only)")
    shape = ctx.shape(0)
    x = ctx.input(0)
    if len(shape) == 4:
        B, H, Sq, D = shape
        x4, cshape = x, lambda r: (B, 1, Sq, r)
    elif len(shape) == 3:
        heads = int(ctx.attr("num_heads", 0))
        if not heads or shape[2] % heads:
            ctx.unsupported("3-D input needs num_heads dividing the hidden size")
        B, Sq, D = shape[0], shape[1], shape[2] // heads
        x4 = _reshape(ctx, x, (B, Sq, heads, D), "heads")
        cshape = lambda r: (B, Sq, 1, r)  # noqa: E731
    else:
        ctx.unsupported(f"rank-{len(shape)} input")
    xshape = ctx.b.tensors[x4].shape
    r = int(ctx.attr("rotary_embedding_dim", 0)) or D
    half = r // 2
    inter = bool(int(ctx.attr("interleaved", 0)))

    def cache(i: int, tag: str) -> int:
        if not ctx.has_input(3):
            return ctx.input(i)
        g = S.GatherOptionsT()
        g.axis = 0
        return _op(ctx, "GATHER", [ctx.input(i), ctx.input(3)], (B, Sq, half), tag, g)

    cos, sin = cache(1, "cos"), cache(2, "sin")
    nsin = _op(ctx, "NEG", [sin], (B, Sq, half), "neg_sin")

    def combine(a: int, b: int, tag: str) -> int:
        if inter:  # (.., half, 2) -> (.., r): a0 b0 a1 b1 ...
            a4, b4 = (_reshape(ctx, t, (B, Sq, half, 1), f"{tag}_{k}") for k, t in (("a", a), ("b", b)))
            return _reshape(ctx, _concat(ctx, [a4, b4], (B, Sq, half, 2), 3, f"{tag}_pairs"), cshape(r), tag)
        return _reshape(ctx, _concat(ctx, [a, b], (B, Sq, r), 2, f"{tag}_halves"), cshape(r), tag)

    C, Sn = combine(cos, cos, "c"), combine(nsin, sin, "s")
    rot_shape = tuple(xshape[:3]) + (r,)
    xr = x4
    if r < D:
        begin = np.zeros(4, np.int32)
        end = np.array(rot_shape, np.int32)
        xr = _op(ctx, "STRIDED_SLICE", [x4, ctx.constant(begin, "begin"), ctx.constant(end, "end"),
                                        ctx.constant(np.ones(4, np.int32), "strides")], rot_shape, "x_rot",
                 S.StridedSliceOptionsT())
    swap = np.arange(r).reshape(-1, 2)[:, ::-1].reshape(-1) if inter else np.r_[np.arange(half, r), np.arange(half)]
    g = S.GatherOptionsT()
    g.axis = 3
    sw = _op(ctx, "GATHER", [xr, ctx.constant(swap.astype(np.int32), "swap")], rot_shape, "swapped", g)
    a = _op(ctx, "MUL", [xr, C], rot_shape, "x_cos", S.MulOptionsT())
    b = _op(ctx, "MUL", [sw, Sn], rot_shape, "x_sin", S.MulOptionsT())
    final = len(shape) == 4 and r == D
    y = _op(ctx, "ADD", [a, b], rot_shape, "rotated", S.AddOptionsT(), out=ctx.output(0) if final else None)
    if r < D:
        rest = tuple(xshape[:3]) + (D - r,)
        xp = _op(ctx, "STRIDED_SLICE", [x4, ctx.constant(np.array([0, 0, 0, r], np.int32), "begin_p"),
                                        ctx.constant(np.array(xshape, np.int32), "end_p"),
                                        ctx.constant(np.ones(4, np.int32), "strides_p")], rest, "x_pass",
                 S.StridedSliceOptionsT())
        y = _concat(ctx, [y, xp], xshape, 3, "joined", out=ctx.output(0) if len(shape) == 4 else None)
    if len(shape) == 3:
        _reshape(ctx, y, shape, "y", out=ctx.output(0))
