"""One graph for every length of a ranged input axis (edgec.graph.dynamic), for backends that lower fixed shapes.

The model is prepared (fold, onnxsim) twice: at the ranges' max and at another length. Simplification is
deterministic, so the two graphs hold the same nodes; the constants that differ were folded from the length
(Shape -> Gather -> Concat -> Reshape and the like). Each is rewritten so the max graph computes every length:
- a Reshape target with the length in one entry: that entry becomes -1;
- an Expand target entry equal to the length of the input's own axis: 1 (Expand broadcasts; 1 keeps the axis);
- a constant that is, at the shorter length, the max constant cut along one axis (a position-embedding slice:
  Gather(table, Range(Shape(x)[1]))): Slice(constant, 0, Shape(other input)[axis]) at run time.
Any other length-dependent constant or attribute is refused with a ShapeError naming the node and the input.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import ShapeError


def generalize(at_max: onnx.ModelProto, at_alt: onnx.ModelProto, lengths: tuple[str, str], model_path: str,
               hint: str) -> tuple[onnx.ModelProto, list[str]]:
    """(`at_max` rewritten to compute every length, one note per rewrite). `lengths`: how the two graphs' input
    shapes read in messages; `hint`: the flag that fixes the length instead."""
    g1, g2 = at_max.graph, at_alt.graph
    ops1 = [(n.op_type, tuple(n.output)) for n in g1.node]
    ops2 = [(n.op_type, tuple(n.output)) for n in g2.node]
    if ops1 != ops2:
        k = next((i for i, (x, y) in enumerate(zip(ops1, ops2)) if x != y), min(len(ops1), len(ops2)))
        node = g1.node[min(k, len(g1.node) - 1)]
        raise ShapeError(f"{model_path}: the graph simplifies differently at {lengths[0]} and {lengths[1]} (first at "
                         f"{node.op_type} '{node.name}'), so no one graph runs every length: {hint}.")
    inits1 = {t.name: t for t in g1.initializer}
    inits2 = {t.name: t for t in g2.initializer}
    shapes1, shapes2 = _shapes(at_max), _shapes(at_alt)
    out = onnx.ModelProto()
    out.CopyFrom(at_max)
    added: list[onnx.TensorProto] = []
    new_nodes: list[onnx.NodeProto] = []
    notes: list[str] = []
    replaced: set[str] = set()
    for n1, n2, node in zip(g1.node, g2.node, out.graph.node):
        if _attrs(n1) != _attrs(n2):
            raise _refused(node, "its attributes", lengths, model_path, hint)
        before = []
        for j, (a, b) in enumerate(zip(n1.input, n2.input)):
            if a not in inits1 or b not in inits2:
                if (a in inits1) != (b in inits2):
                    raise _refused(node, f"input '{a}'", lengths, model_path, hint)
                continue
            c1, c2 = numpy_helper.to_array(inits1[a]), numpy_helper.to_array(inits2[b])
            if c1.shape == c2.shape and np.array_equal(c1, c2):
                continue
            name = f"{a}__edgec_dyn{len(added) + len(new_nodes)}"
            if node.op_type == "Reshape" and j == 1 and (v := _reshape_target(c1, c2)) is not None:
                added.append(numpy_helper.from_array(v, name))
                notes.append(f"Reshape '{node.name}': target {c1.tolist()} -> {v.tolist()}")
            elif node.op_type == "Expand" and j == 1 and (v := _expand_target(c1, c2, n1, n2, shapes1, shapes2)) is not None:
                added.append(numpy_helper.from_array(v, name))
                notes.append(f"Expand '{node.name}': target {c1.tolist()} -> {v.tolist()}")
            elif (cut := _runtime_cut(c1, c2, j, n1, n2, shapes1, shapes2)) is not None:
                axis, source, source_axis = cut
                before += _slice_nodes(a, name, axis, source, source_axis, added)
                notes.append(f"{node.op_type} '{node.name}': constant '{a}' {list(c1.shape)} cut to the length of "
                             f"'{source}' axis {source_axis} at run time")
            else:
                raise _refused(node, f"constant input '{a}' ({list(c1.shape)} at {lengths[0]}, {list(c2.shape)} at "
                                     f"{lengths[1]})", lengths, model_path, hint)
            replaced.add(a)
            node.input[j] = name
        new_nodes += before + [node]
    out.graph.initializer.extend(added)
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    # the replaced targets, unless something else still reads them (a subgraph may, by name)
    used = {i for n in out.graph.node for i in n.input} | {o.name for o in out.graph.output}
    nested = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in out.graph.node
                 for a in n.attribute)
    kept = [t for t in out.graph.initializer if t.name in used or t.name not in replaced or nested]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    cut_value_info(out)
    return out, notes


def _refused(node, what: str, lengths, model_path: str, hint: str) -> ShapeError:
    return ShapeError(
        f"{model_path}: {node.op_type} node '{node.name}': {what} depends on the length ({lengths[0]} vs "
        f"{lengths[1]}) in a way no run-time shape can express here, so this target cannot keep the axis dynamic: "
        f"{hint}.")


def _shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    g = model.graph
    return {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            for v in list(g.input) + list(g.value_info) + list(g.output)}


def _attrs(node: onnx.NodeProto) -> list:
    return [(a.name, helper.get_attribute_value(a)) for a in node.attribute if a.type != onnx.AttributeProto.GRAPH]


def _differing(c1: np.ndarray, c2: np.ndarray) -> list[int] | None:
    if c1.shape != c2.shape or c1.ndim != 1:
        return None
    return [k for k in range(c1.size) if c1[k] != c2[k]]


def _reshape_target(c1: np.ndarray, c2: np.ndarray) -> np.ndarray | None:
    at = _differing(c1, c2)
    if at is None or len(at) != 1 or -1 in c1.tolist() or 0 in c1.tolist():
        return None
    v = c1.copy()
    v[at[0]] = -1
    return v


def _expand_target(c1, c2, n1, n2, shapes1, shapes2) -> np.ndarray | None:
    at = _differing(c1, c2)
    x1, x2 = shapes1.get(n1.input[0]), shapes2.get(n2.input[0])
    if not at or x1 is None or x2 is None:
        return None
    v = c1.copy()
    for k in at:
        i = k - (c1.size - len(x1))  # Expand aligns the target with the input from the right
        if i < 0 or x1[i] != c1[k] or x2[i] != c2[k]:
            return None
        v[k] = 1
    return v


def _runtime_cut(c1, c2, j, n1, n2, shapes1, shapes2) -> tuple[int, str, int] | None:
    """(axis of the constant, tensor whose axis gives its length at run time, that axis) when c2 is c1 cut along
    one axis, and another input of the node has that length on the aligned axis in both graphs."""
    if c1.ndim != c2.ndim:
        return None
    axes = [a for a in range(c1.ndim) if c1.shape[a] != c2.shape[a]]
    if len(axes) != 1 or c2.shape[axes[0]] > c1.shape[axes[0]]:
        return None
    axis = axes[0]
    if not np.array_equal(np.take(c1, np.arange(c2.shape[axis]), axis=axis), c2):
        return None
    for k, (s1, s2) in enumerate(zip(n1.input, n2.input)):
        x1, x2 = shapes1.get(s1), shapes2.get(s2)
        if k == j or not x1 or not x2 or len(x1) != len(x2):
            continue
        i = axis + len(x1) - c1.ndim  # broadcasting aligns from the right
        if 0 <= i < len(x1) and x1[i] == c1.shape[axis] and x2[i] == c2.shape[axis]:
            return axis, s1, i
    return None


DOMAIN = "edgec"  # CutToLength(constant, source) {axis, source_axis}: lowered by the TFLite and CoreML backends


def _slice_nodes(const: str, out: str, axis: int, source: str, source_axis: int,
                 added: list[onnx.TensorProto]) -> list[onnx.NodeProto]:
    """const[..., :source.shape[source_axis], ...] on `axis`, at run time: one node the backends lower to their
    runtime shape ops (TFLite SHAPE -> SLICE, MIL shape -> slice_by_size); ORT never sees it."""
    return [helper.make_node("CutToLength", [const, source], [out], name=out, domain=DOMAIN, axis=axis,
                             source_axis=source_axis)]


def cut_value_info(model: onnx.ModelProto) -> None:
    """Shape inference skips the custom node: declare its output (the constant's type, the source's length)."""
    g = model.graph
    shapes = _shapes(model)
    types = {t.name: (t.data_type, list(t.dims)) for t in g.initializer}
    cuts = {n.output[0] for n in g.node if n.domain == DOMAIN}
    kept = [v for v in g.value_info if v.name not in cuts]  # inference through the function loses the dims
    del g.value_info[:]
    g.value_info.extend(kept)
    for n in g.node:
        if n.domain == DOMAIN:
            elem, dims = types[n.input[0]]
            axis = next(a.i for a in n.attribute if a.name == "axis")
            src_axis = next(a.i for a in n.attribute if a.name == "source_axis")
            dims[axis] = shapes[n.input[1]][src_axis]
            g.value_info.append(helper.make_tensor_value_info(n.output[0], elem, dims))
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    if any(n.domain == DOMAIN for n in g.node) and not any(f.domain == DOMAIN for f in model.functions):
        model.functions.append(_cut_function(model))


def _cut_function(model: onnx.ModelProto) -> onnx.FunctionProto:
    """CutToLength in standard ops, as a model-local function: ONNX Runtime (the fp16 probe, layer checks) and shape
    inference run it; the TFLite and CoreML lowerings take the node itself."""
    def const(out: str, **attr) -> onnx.NodeProto:
        node = helper.make_node("Constant", [], [out])
        for name, ref in attr.items():
            a = onnx.AttributeProto(name=name, ref_attr_name=ref, type=onnx.AttributeProto.INT)
            node.attribute.append(a)
        return node

    zero = helper.make_node("Constant", [], ["zero"], value_ints=[0])
    nodes = [zero, const("sa", value_int="source_axis"), const("ax", value_int="axis"),
             helper.make_node("Shape", ["source"], ["dims"]),
             helper.make_node("Gather", ["dims", "sa"], ["n"]),
             helper.make_node("Unsqueeze", ["n", "zero"], ["n1"]),
             helper.make_node("Unsqueeze", ["ax", "zero"], ["ax1"]),
             helper.make_node("Slice", ["table", "zero", "n1", "ax1"], ["out"])]
    onnx_opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    return helper.make_function(DOMAIN, "CutToLength", ["table", "source"], ["out"], nodes,
                                [helper.make_opsetid("", max(onnx_opset, 13))], ["axis", "source_axis"])


def at_shapes(model, shapes: dict):
    """A copy of the (generalized) model with these input shapes, every other shape inferred again."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for v in out.graph.input:
        if v.name in shapes:
            for d, size in zip(v.type.tensor_type.shape.dim, shapes[v.name]):
                d.Clear()
                d.dim_value = int(size)
    del out.graph.value_info[:]
    for o in out.graph.output:
        o.type.tensor_type.ClearField("shape")
    out = onnx.shape_inference.infer_shapes(out, strict_mode=False, data_prop=True)
    if any(n.domain == DOMAIN for n in out.graph.node):  # its output's shape first, then what follows it
        cut_value_info(out)
        out = onnx.shape_inference.infer_shapes(out, strict_mode=False, data_prop=True)
    return out
