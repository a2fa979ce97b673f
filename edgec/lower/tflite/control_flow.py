"""Control flow with run-time decisions on TFLite: an ONNX If becomes an IF op, its branches (and later loop
bodies) subgraphs of the same file.

A subgraph only sees its inputs, while an ONNX branch reads outer-scope tensors by name. So, right after the IR
is built, every node holding a subgraph lists those outer reads as extra inputs (`explicit_captures`): the
layout pass and the other IR rewrites then rename and keep them like any other input, and the lowering passes
the run-time ones to the IF op (the constant ones are copied into the subgraph). Each branch is lowered by the
same converter as the main graph, as a small ONNX model of its own, then attached to the main builder."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.graph.diagnose import node_inputs
from edgec.graph.loop_body import static_slices
from edgec.lower.tflite.builder import Unsupported
from edgec.lower.tflite.ir import Graph

CAPTURES = "_captures"  # IR attribute: the outer-scope names appended to a node's inputs, in order
_converter = []  # convert._lower, registered by convert.py (which imports this module, not the other way)


def use_converter(lower) -> None:
    _converter[:] = [lower]


def explicit_captures(g: Graph) -> None:
    """Append the outer-scope tensors each subgraph-holding node reads to its inputs (names kept in CAPTURES)."""
    for node in g.nodes:
        graphs = [v for v in node.attrs.values() if isinstance(v, onnx.GraphProto)]
        if not graphs:
            continue
        proto = helper.make_node(node.op, node.inputs, node.outputs,
                                 **{k: v for k, v in node.attrs.items() if isinstance(v, onnx.GraphProto)})
        direct = [i for i in node.inputs if i]
        outer = list(dict.fromkeys(n for n in node_inputs(proto)[len(direct):] if n not in direct))
        node.attrs[CAPTURES] = outer
        node.inputs = list(node.inputs) + outer


def branch_model(body: onnx.GraphProto, inputs: list[tuple[str, tuple, np.dtype]], consts: dict[str, np.ndarray],
                 outputs: list[tuple[tuple, np.dtype]], opset: int, name: str) -> onnx.ModelProto:
    """`body` as a model of its own: `inputs` (name, shape, dtype) first (the body's formal inputs, then the
    run-time captures), `consts` as initializers, outputs typed as the op's outputs."""
    def vi(n, shape, dtype):
        return helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape))

    graph = helper.make_graph(
        list(body.node), name, [vi(n, s, d) for n, s, d in inputs],
        [vi(o.name, s, d) for o, (s, d) in zip(body.output, outputs)],
        list(body.initializer) + [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def lower_subgraph(ctx, model: onnx.ModelProto, what: str) -> int:
    """Lower `model` with the main graph's converter settings; the subgraph index (0 in a dry run)."""
    sub = _converter[0](model, fp16=ctx.b.fp16_weights, write=not ctx.b.dry, keep_float=frozenset(), nhwc_io=False,
                 int8_io=False, share_consts=ctx.b.share_consts)
    if sub.problems:
        op, name, why = sub.problems[0]
        raise Unsupported(f"its {what}: {op} node '{name}': {why}")
    if ctx.b.dry:
        return 0
    return ctx.b.attach(sub.builder)


def captured(ctx, first: int) -> tuple[list[tuple[str, tuple, np.dtype]], dict[str, np.ndarray], list[int]]:
    """The node's captures (inputs from `first` on): (run-time ones as (original name, shape, dtype),
    constant ones {original name: value}, the run-time ones' tensors for the op's inputs)."""
    names = ctx.node.attrs.get(CAPTURES, [])
    runtime, consts, tensors = [], {}, []
    for k, original in enumerate(names):
        i = first + k
        value = ctx.const(i)
        if value is not None:
            consts[original] = value
        else:
            runtime.append((original, ctx.shape(i), ctx.dtype(i)))
            tensors.append(ctx.input(i))
    return runtime, consts, tensors


def typed_body(body: onnx.GraphProto, inputs: list[tuple[str, tuple, np.dtype]], consts: dict[str, np.ndarray],
               opset: int, iteration: str) -> tuple[onnx.GraphProto, dict[str, tuple[tuple, int]]]:
    """(the body with its run-time-position Slices made Gathers (graph/loop_body.py), {body output name:
    (static shape or None, ONNX elem type)} by shape inference of that body on `inputs`)."""
    def vi(n, shape, dtype):
        return helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape))

    graph = helper.make_graph(list(body.node), "probe", [vi(n, s, d) for n, s, d in inputs],
                              [helper.make_tensor_value_info(o.name, 0, None) for o in body.output],
                              list(body.initializer) + [numpy_helper.from_array(np.asarray(v), k)
                                                        for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = static_slices(model, iteration)
    rewritten = onnx.GraphProto()
    rewritten.CopyFrom(body)
    del rewritten.node[:]
    rewritten.node.extend(model.graph.node)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001  (unknown: the caller refuses)
        pass
    known = {v.name: v for v in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input)}
    out = {}
    for o in body.output:
        v = known.get(o.name)
        t = v.type.tensor_type if v is not None else None
        shape = None
        if t is not None and t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shape = tuple(d.dim_value for d in t.shape.dim)
        out[o.name] = (shape, t.elem_type if t is not None else 0)
    return rewritten, out
