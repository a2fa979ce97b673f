"""Slices at a run-time position inside a loop body, made static-shaped for the targets.

Exporters write `x[i:i + 1]` in a loop body as Slice(x, Unsqueeze(i), Unsqueeze(i + 1)): ONNX shape inference
cannot tell its length, and the targets' Slice lowerings need constant bounds. Its length is the same at every
iteration in such bodies, so it is measured by running the body with ONNX Runtime at two iterations (0 and 1,
everything else zero); when both agree, the Slice becomes a Gather of `start + arange(length)` on its axis
(negative starts wrapped as Slice does), which every target lowers with a run-time index. An index past the end
then fails at run time in the target instead of returning a shorter slice silently."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.graph.view import constants


def static_slices(model: onnx.ModelProto, iteration: str | None = None) -> onnx.ModelProto:
    """`model` (a loop body as a model of its own) with its run-time-position Slices rewritten; `iteration`:
    the name of the body's iteration-number input (probed at 0 and 1). Unchanged when nothing applies."""
    consts = constants(model.graph)
    shapes = _shapes(model)
    todo = [n for n in model.graph.node if n.op_type == "Slice" and len(n.input) >= 3 and not (
        n.input[1] in consts and n.input[2] in consts) and _single_axis(n, consts, shapes) is not None]
    if not todo:
        return model
    lengths = _measured(model, [n.output[0] for n in todo], iteration)
    if not lengths:
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    nodes = []
    for node in out.graph.node:
        axis = _single_axis(node, consts, shapes) if node.op_type == "Slice" else None
        length = lengths.get(node.output[0]) if axis is not None else None
        if length is None or node.input[1] in consts and node.input[2] in consts:
            nodes.append(node)
            continue
        nodes += _as_gather(node, axis, shapes[node.input[0]][axis], length[axis])
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001
        inferred = model
    out = {}
    g = inferred.graph
    for v in list(g.input) + list(g.value_info) + list(g.output):
        t = v.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            out[v.name] = [d.dim_value for d in t.shape.dim]
    for t in g.initializer:
        out[t.name] = list(t.dims)
    return out


def _single_axis(node: onnx.NodeProto, consts, shapes) -> int | None:
    """The one axis a step-1 Slice of a static-shaped input cuts, else None."""
    x = shapes.get(node.input[0])
    if x is None or (len(node.input) > 4 and node.input[4] and (
            node.input[4] not in consts or np.any(np.asarray(consts[node.input[4]]) != 1))):
        return None
    if len(node.input) > 3 and node.input[3]:
        if node.input[3] not in consts:
            return None
        axes = [int(a) for a in np.asarray(consts[node.input[3]]).reshape(-1)]
    else:
        axes = [0] if shapes.get(node.input[1]) == [1] else None
    if not axes or len(axes) != 1:
        return None
    return axes[0] % len(x)


def _measured(model: onnx.ModelProto, names: list[str], iteration: str | None) -> dict[str, list[int]]:
    """{Slice output: shape} when the body gives the same shape at iterations 0 and 1 (run with zeros)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001
        return {}
    elem = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    if not all(elem.get(n) for n in names):
        return {}
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_tensor_value_info(n, elem[n], None) for n in names)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for v in model.graph.input:
        if v.name in inits:
            continue
        t = v.type.tensor_type
        if not all(d.HasField("dim_value") for d in t.shape.dim):
            return {}
        dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
        feeds[v.name] = np.zeros([d.dim_value for d in t.shape.dim], dtype)
    try:
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        runs = []
        for k in (0, 1):
            if iteration in feeds:
                feeds[iteration] = np.full_like(feeds[iteration], k)
            runs.append(session.run(names, feeds))
    except Exception:  # noqa: BLE001  (the body does not run on zeros: the Slice stays, the target says why)
        return {}
    return {n: list(a.shape) for n, a, b in zip(names, *runs) if a.shape == b.shape and a.size}


def _as_gather(node: onnx.NodeProto, axis: int, dim: int, length: int) -> list[onnx.NodeProto]:
    """Gather(x, wrap(start) + arange(length), axis): wrap adds dim to a negative start, as Slice does."""
    p = f"{node.output[0]}/static"

    def const(name, value):
        return helper.make_node("Constant", [], [f"{p}/{name}"], value=numpy_helper.from_array(value, f"{p}/{name}"))

    start = node.input[1]
    dtype = np.int64
    return [
        const("dim", np.array([dim], dtype)), const("zero", np.array([0], dtype)),
        const("arange", np.arange(length, dtype=dtype)),
        helper.make_node("Less", [start, f"{p}/zero"], [f"{p}/negative"]),
        helper.make_node("Add", [start, f"{p}/dim"], [f"{p}/wrapped"]),
        helper.make_node("Where", [f"{p}/negative", f"{p}/wrapped", start], [f"{p}/start"]),
        helper.make_node("Add", [f"{p}/start", f"{p}/arange"], [f"{p}/indices"]),
        helper.make_node("Gather", [node.input[0], f"{p}/indices"], [node.output[0]], axis=axis,
                         name=node.name or f"{p}/gather"),
    ]
