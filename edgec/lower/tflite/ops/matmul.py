"""Gemm and MatMul: FULLY_CONNECTED when the right operand is a constant, else BATCH_MATMUL."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers


def _fully_connected(ctx: LowerCtx, x: int, weights: np.ndarray, bias: np.ndarray | None, out: int,
                     keep_dims: bool) -> None:
    """weights: (N, K) as TFLite wants them. int8-dynamic: int8 weights read directly by the hybrid kernel, which
    quantizes the float input per row at run time (asymmetric: a GELU or softmax output is not centred)."""
    opts = S.FullyConnectedOptionsT()
    opts.keepNumDims = keep_dims
    b = ctx.constant(bias.astype(np.float32), "bias") if bias is not None else -1
    w = ctx.b.int8_weights(weights, f"{ctx.node.name}/weights")
    if w is not None:
        opts.asymmetricQuantizeInputs = True
    else:
        w = ctx.constant(np.ascontiguousarray(weights, np.float32), "weights")
    ctx.emit("FULLY_CONNECTED", [x, w, b], [out], opts, version=5 if keep_dims else 1)


@lowers("Gemm")
def gemm(ctx: LowerCtx) -> None:
    """alpha*A*B' + beta*C: FULLY_CONNECTED with alpha folded into the weights and beta*C into the bias."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (only float32)")
    b = ctx.const(1)
    if b is None:
        ctx.unsupported("B (input 1) must be a constant")
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    w = (b if int(ctx.attr("transB", 0)) else b.T).astype(np.float32) * np.float32(alpha)
    n = w.shape[0]
    c = ctx.const(2) if ctx.has_input(2) else None
    if ctx.has_input(2) and c is None:
        ctx.unsupported("C (input 2) must be a constant")
    bias, rest = None, None
    if c is not None:
        if c.size == n and (c.ndim == 1 or c.shape[-1] == n):
            bias = (c.reshape(n) * beta).astype(np.float32)
        elif c.size == 1:
            bias = np.full(n, float(c.reshape(-1)[0]) * beta, np.float32)
        else:  # a full (M, N) or (M, 1) C: added after the product
            rest = (c * beta).astype(np.float32)
    a = ctx.input(0)
    if int(ctx.attr("transA", 0)):
        m, k = ctx.shape(0)
        t = ctx.temp((k, m), tag="a_t")
        ctx.emit("TRANSPOSE", [a, ctx.constant(np.array([1, 0], np.int32), "perm")], [t], S.TransposeOptionsT())
        a = t
    out = ctx.output(0) if rest is None else ctx.temp(ctx.out_shape(0), tag="product")
    _fully_connected(ctx, a, w, bias, out, keep_dims=False)
    if rest is not None:
        ctx.emit("ADD", [out, ctx.constant(rest.reshape((1,) * (2 - rest.ndim) + rest.shape), "c")], [ctx.output(0)],
                 S.AddOptionsT())


@lowers("MatMul")
def matmul(ctx: LowerCtx) -> None:
    """FULLY_CONNECTED (keep dims) for a constant 2-D right side, else BATCH_MATMUL."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (only float32)")
    a_shape, b_shape = ctx.shape(0), ctx.shape(1)
    if len(a_shape) < 2 or len(b_shape) < 2:
        return _vector_matmul(ctx, a_shape, b_shape)
    b = ctx.const(1)
    if b is not None and b.ndim == 2:
        return _fully_connected(ctx, ctx.input(0), b.T, None, ctx.output(0), keep_dims=len(a_shape) > 2)
    opts = S.BatchMatMulOptionsT()
    # the layout pass may hand an operand over untransposed (last two axes) with its flag set
    opts.adjX, opts.adjY = bool(ctx.attr("adj_x", 0)), bool(ctx.attr("adj_y", 0))
    ctx.emit("BATCH_MATMUL", [ctx.input(0), ctx.input(1)], [ctx.output(0)], opts)


def _vector_matmul(ctx: LowerCtx, a_shape, b_shape) -> None:
    """1-D operands (numpy rules): a (K,) is (1, K), b (K,) is (K, 1); the added axis is dropped after."""
    a, b = ctx.input(0), ctx.input(1)
    if len(a_shape) == 1:
        a2 = ctx.temp((1, a_shape[0]), tag="a_row")
        ctx.emit("RESHAPE", [a, ctx.constant(np.array([1, a_shape[0]], np.int32), "a_shape")], [a2])
        a, a_shape = a2, (1, a_shape[0])
    if len(b_shape) == 1:
        b2 = ctx.temp((b_shape[0], 1), tag="b_col")
        ctx.emit("RESHAPE", [b, ctx.constant(np.array([b_shape[0], 1], np.int32), "b_shape")], [b2])
        b, b_shape = b2, (b_shape[0], 1)
    batch = np.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2]))
    full = ctx.temp(tuple(batch) + (a_shape[-2], b_shape[-1]), tag="product")
    ctx.emit("BATCH_MATMUL", [a, b], [full], S.BatchMatMulOptionsT())
    out = ctx.out_shape(0)
    ctx.emit("RESHAPE", [full, ctx.constant(np.array(out, np.int32), "out_shape")], [ctx.output(0)])
