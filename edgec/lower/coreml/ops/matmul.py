"""MatMul and Gemm."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb

from edgec.lower.coreml.ops._util import need_shape
from edgec.lower.coreml.registry import Env, NodeView, lowers


def _check_matmul(n: NodeView) -> str | None:
    return need_shape(n, 0) or need_shape(n, 1)


@lowers("MatMul", check=_check_matmul)
def matmul(n: NodeView, env: Env):
    """matmul (numpy semantics, as in ONNX); 1-D operands are made 2-D explicitly and squeezed back, since
    coremltools' own 1-D handling mis-infers or fails (1-D x 3-D, N-D x 1-D, 1-D x 1-D)"""
    x, y = env.var(n, 0), env.var(n, 1)
    x1, y1 = len(n.shape(0)) == 1, len(n.shape(1)) == 1
    if not (x1 or y1):
        return mb.matmul(x=x, y=y, name=env.out(n))
    if x1:
        x = mb.expand_dims(x=x, axes=[0], name=env.tmp(n, "x2d"))
    if y1:
        y = mb.expand_dims(x=y, axes=[-1], name=env.tmp(n, "y2d"))
    z = mb.matmul(x=x, y=y, name=env.tmp(n, "mm"))
    axes = ([-2] if x1 else []) + ([-1] if y1 else [])
    return mb.squeeze(x=z, axes=axes, name=env.out(n))


def _check_gemm(n: NodeView) -> str | None:
    return need_shape(n, 0) or need_shape(n, 1)


@lowers("Gemm", check=_check_gemm)
def gemm(n: NodeView, env: Env):
    """linear when B is constant (alpha, beta and C folded in), else matmul + scale + add"""
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    trans_a, trans_b = bool(n.attr("transA", 0)), bool(n.attr("transB", 0))
    a = env.var(n, 0)
    if trans_a:
        a = mb.transpose(x=a, perm=np.array([1, 0], np.int32), name=env.tmp(n, "at"))
    b = n.const(1)
    c = n.const(2) if n.has(2) else None
    out_cols = n.shape(1)[0 if trans_b else 1]
    if b is not None and (not n.has(2) or c is not None):
        weight = (b if trans_b else b.T).astype(np.float32) * np.float32(alpha)  # linear wants [out, in]
        bias = np.zeros(out_cols, np.float32)
        if c is not None:
            full = np.broadcast_to(c.astype(np.float32) * np.float32(beta), (n.shape(0)[1 if trans_a else 0], out_cols))
            if not np.all(full == full[:1]):  # C varies by row: not a bias
                y = mb.linear(x=a, weight=np.ascontiguousarray(weight), name=env.tmp(n, "linear"))
                return mb.add(x=y, y=np.ascontiguousarray(full), name=env.out(n))
            bias = np.ascontiguousarray(full[0])
        return mb.linear(x=a, weight=np.ascontiguousarray(weight), bias=bias, name=env.out(n))
    last = not n.has(2) and alpha == 1.0
    y = mb.matmul(x=a, y=env.var(n, 1), transpose_y=trans_b, name=env.out(n) if last else env.tmp(n, "mm"))
    if alpha != 1.0:
        y = mb.mul(x=y, y=np.float32(alpha), name=env.out(n) if not n.has(2) else env.tmp(n, "alpha"))
    if n.has(2):
        cv = env.var(n, 2) if beta == 1.0 else mb.mul(x=env.var(n, 2), y=np.float32(beta), name=env.tmp(n, "beta"))
        y = mb.add(x=y, y=cv, name=env.out(n))
    return y
