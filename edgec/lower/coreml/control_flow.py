"""ONNX subgraphs (If branches, Loop bodies) as MIL blocks. A MIL block reads the enclosing block's vars by
reference, like an ONNX subgraph reads outer-scope tensors by name; so a body is lowered node by node with the
same registry, in an Env that starts from the enclosing one. Its types come from a small ONNX model of its own
(the outer tensors it reads become typed inputs, the outer constants it reads initializers), which is also
what `find_problems` checks before anything is built."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.graph.diagnose import node_inputs
from edgec.lower.coreml.registry import Env, GraphView, NodeView, lower_nodes, to_mil_array


def outer_reads(node: onnx.NodeProto) -> list[str]:
    direct = {i for i in node.input if i}
    return [n for n in dict.fromkeys(node_inputs(node)) if n not in direct]


def body_model(n: NodeView, body: onnx.GraphProto, formal: list[tuple[str, int, list[int] | None]],
               outputs: list[tuple[int, list[int] | None]]) -> onnx.ModelProto:
    """`body` as a model: its formal inputs (name, elem type, shape), then the outer tensors it reads (typed from
    the enclosing graph; constants become initializers); outputs typed as given (None shape: inferred)."""
    graph = n.graph
    inputs = [helper.make_tensor_value_info(name, elem, shape) for name, elem, shape in formal]
    inits = list(body.initializer)
    for name in outer_reads(helper.make_node(n.op, n.inputs, n.outputs, **{
            k: v for k, v in n.attrs.items() if isinstance(v, onnx.GraphProto)})):
        if name in graph.consts:
            inits.append(numpy_helper.from_array(np.asarray(graph.consts[name]), name))
        else:
            elem, shape = graph.types.get(name, (onnx.TensorProto.FLOAT, None))
            inputs.append(helper.make_tensor_value_info(name, elem, shape))
    outs = [helper.make_tensor_value_info(o.name, elem, shape) for o, (elem, shape) in zip(body.output, outputs)]
    g = helper.make_graph(list(body.node), f"{n.name}_body", inputs, outs, inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", graph.opset)])
    model.ir_version = 8
    return model


def body_problem(model: onnx.ModelProto, what: str) -> str | None:
    """Why the body cannot be lowered (its first problem), or None."""
    from edgec.lower.coreml.build import find_problems

    problems = find_problems(model)
    if not problems:
        return None
    op, name, why = problems[0]
    return f"its {what}: {op} node '{name}': {why}"


def lower_body(model: onnx.ModelProto, env: Env, bound: dict[str, object]) -> list:
    """Lower the body's nodes inside the current MIL block; `bound`: formal input name -> MIL var. Returns one
    var per body output (each made inside this block: a block must produce what it returns)."""
    from coremltools.converters.mil.mil import Builder as mb

    view = GraphView(model)
    inner = Env(view, env.names)
    inner.opset = env.opset
    inner.values = {**env.values, **bound}
    inner.const_vars = dict(env.const_vars)  # outer consts are visible; new ones stay in this block
    lower_nodes(model, view, inner)
    outs = []
    for o in model.graph.output:
        value = inner.values.get(o.name, view.consts.get(o.name))
        if isinstance(value, np.ndarray):
            value = mb.const(val=to_mil_array(value), name=env.names.fresh(f"{o.name}_const"))
        outs.append(mb.identity(x=value, name=env.names.fresh(f"{o.name}_out")))
    return outs
