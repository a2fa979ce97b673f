"""DFT as one real matmul: the transform is linear in the (real, imaginary) input components, so its matrix is the
ONNX reference DFT applied to each basis vector (forward, inverse, onesided, dft_length alike)."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto, helper

from edgec.lower.coreml.ops._util import first, need_const, need_shape, norm_axis
from edgec.lower.coreml.registry import Env, NodeView, lowers


def _axis(n: NodeView) -> int:
    rank = len(n.shape(0))
    if n.graph.opset >= 20:
        a = int(n.const(2).reshape(-1)[0]) if n.has(2) else -2
    else:
        a = int(n.attr("axis", 1))
    return norm_axis(a, rank)


def _check_dft(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "dft_length"), need_const(n, 2, "axis") if n.graph.opset >= 20 else None)
    if why:
        return why
    if n.out_shape(0) is None:
        return "output shape unknown"
    if n.dtype(0) not in (TensorProto.FLOAT, None):
        return "non-float32 input"
    if _axis(n) == len(n.shape(0)) - 1:
        return "the last axis holds the real/imaginary parts, not a signal axis"
    return None


def _matrix(n: NodeView, length: int, comps: int) -> np.ndarray:
    """[length * comps, K * out_comps]: the reference DFT of every basis input, on axis 1 of a [basis, length, comps]
    batch."""
    from onnx.reference import ReferenceEvaluator

    basis = np.eye(length * comps, dtype=np.float32).reshape(length * comps, length, comps)
    attrs = {k: n.attr(k) for k in ("inverse", "onesided") if n.attr(k) is not None}
    inputs = ["x", "len" if n.has(1) else "", "axis"]
    node = helper.make_node("DFT", inputs, ["y"], **attrs)
    inits = [helper.make_tensor("axis", TensorProto.INT64, [], [1])]
    if n.has(1):
        inits.append(helper.make_tensor("len", TensorProto.INT64, [], [int(n.const(1).reshape(-1)[0])]))
    graph = helper.make_graph([node], "dft", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    y = ReferenceEvaluator(model).run(None, {"x": basis})[0]
    return np.asarray(y, np.float32).reshape(length * comps, -1)


@lowers("DFT", check=_check_dft)
def dft(n: NodeView, env: Env):
    """transpose the signal axis next to the components, one matmul with the reference DFT's matrix, back"""
    shape = list(n.shape(0))
    out = list(n.out_shape(0))
    rank = len(shape)
    axis = _axis(n)
    perm = [i for i in range(rank - 1) if i != axis] + [axis, rank - 1]
    inv = [perm.index(i) for i in range(rank)]
    x = env.var(n, 0)
    if perm != list(range(rank)):
        x = mb.transpose(x=x, perm=np.array(perm, np.int32), name=env.tmp(n, "to_signal"))
    rest = [shape[i] for i in perm[:-2]]
    m = _matrix(n, shape[axis], shape[-1])
    x = mb.reshape(x=x, shape=np.array([int(np.prod(rest)), m.shape[0]], np.int32), name=env.tmp(n, "rows"))
    y = mb.matmul(x=x, y=m, name=env.tmp(n, "mm"))
    moved = rest + [out[axis], out[-1]]
    y = mb.reshape(x=y, shape=np.array(moved, np.int32), name=env.tmp(n, "unrows") if perm != list(range(rank))
                   else env.out(n))
    if perm != list(range(rank)):
        y = mb.transpose(x=y, perm=np.array(inv, np.int32), name=env.out(n))
    return y
