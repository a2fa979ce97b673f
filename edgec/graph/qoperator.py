"""Models that arrive quantized in ONNX's QOperator form (QLinearConv, QLinearMatMul: what ONNX Runtime's
quantize_static writes with QuantFormat.QOperator, and what some exporters emit) become the QDQ form every backend
lowers: DequantizeLinear -> Conv/MatMul -> QuantizeLinear with the model's own scales and zero points. Same
numbers (ONNX Runtime fuses the group back into its QLinear kernel); TFLite and CoreML then fold it like a QDQ
model they quantized themselves. Contrib-domain QOperator ops (com.microsoft QGemm, QLinearAdd, ...) are left
as they are: the backends name them when they cannot lower them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.graph.view import constants


def _dq(name: str, x: str, scale: str, zp: str, out: str, axis: int | None = None) -> onnx.NodeProto:
    extra = {"axis": axis} if axis is not None else {}
    return helper.make_node("DequantizeLinear", [x, scale, zp] if zp else [x, scale], [out], name=name, **extra)


def _per_axis(consts: dict, scale: str, axis: int) -> int | None:
    s = consts.get(scale)
    return axis if s is not None and s.size > 1 else None


def _conv(node: onnx.NodeProto, consts: dict, graph: onnx.GraphProto) -> list[onnx.NodeProto] | None:
    x, xs, xzp, w, ws, wzp, ys, yzp = list(node.input[:8])
    bias = node.input[8] if len(node.input) > 8 and node.input[8] else ""
    base = node.name or node.output[0]
    out = [_dq(f"{base}/dq_x", x, xs, xzp, f"{base}/x"), _dq(f"{base}/dq_w", w, ws, wzp, f"{base}/w",
                                                            _per_axis(consts, ws, 0))]
    inputs = [f"{base}/x", f"{base}/w"]
    if bias:
        if xs not in consts or ws not in consts:
            return None  # the bias scale (x_scale * w_scale) must be known to write its DequantizeLinear
        bscale = (consts[xs].astype(np.float64) * consts[ws].astype(np.float64)).astype(np.float32).reshape(-1)
        graph.initializer.append(numpy_helper.from_array(bscale, f"{base}/b_scale"))
        out.append(_dq(f"{base}/dq_b", bias, f"{base}/b_scale", "", f"{base}/b", 0 if bscale.size > 1 else None))
        inputs.append(f"{base}/b")
    out.append(helper.make_node("Conv", inputs, [f"{base}/y"], name=f"{base}/conv"))
    out[-1].attribute.extend(node.attribute)
    out.append(helper.make_node("QuantizeLinear", [f"{base}/y", ys, yzp] if yzp else [f"{base}/y", ys],
                                [node.output[0]], name=f"{base}/q_y"))
    return out


def _matmul(node: onnx.NodeProto, consts: dict, graph: onnx.GraphProto) -> list[onnx.NodeProto] | None:
    a, as_, azp, b, bs, bzp, ys, yzp = list(node.input[:8])
    base = node.name or node.output[0]
    b_rank = len(consts[b].shape) if b in consts else 2
    return [
        _dq(f"{base}/dq_a", a, as_, azp, f"{base}/a"),
        _dq(f"{base}/dq_b", b, bs, bzp, f"{base}/b", _per_axis(consts, bs, b_rank - 1)),
        helper.make_node("MatMul", [f"{base}/a", f"{base}/b"], [f"{base}/y"], name=f"{base}/matmul"),
        helper.make_node("QuantizeLinear", [f"{base}/y", ys, yzp] if yzp else [f"{base}/y", ys],
                         [node.output[0]], name=f"{base}/q_y"),
    ]


_REWRITES = {"QLinearConv": _conv, "QLinearMatMul": _matmul}


def qoperator_to_qdq(model: onnx.ModelProto) -> int:
    """The graph pass (registered in passes.py): rewrites in place, returns how many nodes it rewrote."""
    graph = model.graph
    if not any(n.op_type in _REWRITES and n.domain in ("", "ai.onnx") for n in graph.node):
        return 0
    consts = constants(graph)
    nodes, rewrites = [], 0
    for node in graph.node:
        rule = _REWRITES.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        new = rule(node, consts, graph) if rule else None
        if new is None:
            nodes.append(node)
            continue
        nodes.extend(new)
        rewrites += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return rewrites
