"""Control flow on a run-time value: If -> IF with both branches as subgraphs, Loop -> WHILE with a cond and a body
subgraph (control_flow.py). An If whose condition is known at build time never gets here (edgec's fold inlines
it), nor a small Loop with a constant trip count (graph/unroll.py unrolls it)."""

from __future__ import annotations

import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as S
from onnx import helper, numpy_helper

from edgec.lower.tflite.control_flow import branch_model, captured, lower_subgraph, typed_body
from edgec.lower.tflite.registry import LowerCtx, lowers


def _has_graphs(*names: str):
    def check(ctx: LowerCtx) -> str | None:
        missing = [n for n in names if not isinstance(ctx.attr(n), onnx.GraphProto)]
        return f"it has no {missing[0]} subgraph attribute (a malformed node)" if missing else None
    return check


@lowers("If", check=_has_graphs("then_branch", "else_branch"))
def if_(ctx: LowerCtx) -> None:
    """IF(cond, captured tensors...): then/else branches lowered as subgraphs taking the captured tensors."""
    if int(np.prod(ctx.shape(0))) != 1:
        ctx.unsupported(f"its condition has shape {list(ctx.shape(0))}; IF takes a single bool")
    outs = [(ctx.out_shape(j), ctx.out_dtype(j)) for j in range(len(ctx.node.outputs))]
    runtime, consts, tensors = captured(ctx, 1)
    index = {}
    for branch in ("then_branch", "else_branch"):
        body = ctx.attr(branch)
        for o, (shape, _) in zip(body.output, outs):  # IF outputs take one static shape from either branch
            t = o.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim] if t.HasField("shape") else None
            if dims is not None and -1 not in dims and tuple(dims) != tuple(shape):
                ctx.unsupported(f"its {branch} output '{o.name}' has shape {dims}, the If's output {list(shape)}: "
                                f"TFLite's IF needs one static shape from both branches")
        model = branch_model(body, runtime, consts, outs, ctx.opset, f"{ctx.node.name}/{branch}")
        index[branch] = lower_subgraph(ctx, model, branch.replace("_", " "))
    cond = ctx.input(0)
    options = S.IfOptionsT()
    options.thenSubgraphIndex, options.elseSubgraphIndex = index["then_branch"], index["else_branch"]
    ctx.emit("IF", [cond, *tensors], [ctx.output(j) for j in range(len(outs))], options)


_I64_MAX = np.iinfo(np.int64).max


@lowers("Loop", check=_has_graphs("body"))
def loop(ctx: LowerCtx) -> None:
    """WHILE over (i, M, cond, carried..., scan accumulators..., captured...): the cond subgraph tests
    i < M and cond, the body runs the ONNX body, counts i and appends each scan output to its accumulator (a
    tensor that grows by one row per iteration: the scan outputs' length is only known at run time)."""
    body = ctx.attr("body")
    n_carried = len(body.input) - 2
    n_scan = len(body.output) - 1 - n_carried
    b_in = [i.name for i in body.input]
    runtime, consts, cap_tensors = captured(ctx, 2 + n_carried)
    carried = [(b_in[2 + k], ctx.shape(2 + k), ctx.dtype(2 + k)) for k in range(n_carried)]
    head = [(b_in[0], (), np.dtype(np.int64)), ("__trip", (), np.dtype(np.int64)), (b_in[1], (), np.dtype(np.bool_))]
    # x[i:i + 1] in the body becomes a Gather at a run-time index (graph/loop_body.py)
    body, types = typed_body(body, head[:1] + head[2:] + carried + runtime, consts, ctx.opset, b_in[0])
    outs = [o.name for o in body.output]
    for (name, shape, dtype), o in zip(carried, outs[1:1 + n_carried]):
        if types[o][0] is not None and types[o][0] != tuple(shape):  # unknown: the subgraph's lowering decides
            ctx.unsupported(f"loop-carried '{name}' changes shape in the body ({list(shape)} -> {types[o][0]}); "
                            f"WHILE needs one static shape")
    elems = []
    for o in outs[1 + n_carried:]:
        shape, elem = types[o]
        if shape is None or not elem:
            ctx.unsupported(f"scan output '{o}' has no static shape in the body")
        elems.append((shape, np.dtype(helper.tensor_dtype_to_np_dtype(elem))))
    # the accumulators start empty; in the subgraphs they are declared with one row (a zero-size operand would
    # be dropped from the CONCATENATION): WHILE gives its subgraphs the actual shapes at run time anyway
    accs = [(f"__acc{k}", (0, *shape), dtype) for k, (shape, dtype) in enumerate(elems)]
    loop_vars = head + carried + [(n, (1, *s[1:]), d) for n, s, d in accs] + runtime
    # the cond subgraph: i < M and cond
    cond_graph = onnx.GraphProto()
    cond_graph.node.extend([helper.make_node("Less", [b_in[0], "__trip"], ["__more"]),
                            helper.make_node("And", ["__more", b_in[1]], ["__go"])])
    cond_graph.output.extend([helper.make_tensor_value_info("__go", onnx.TensorProto.BOOL, [])])
    cond_index = lower_subgraph(ctx, branch_model(cond_graph, loop_vars, {}, [((), np.bool_)], ctx.opset,
                                                  f"{ctx.node.name}/cond"), "loop condition")
    # the body subgraph: the ONNX body, then i + 1 and the accumulators grown by one row
    step = onnx.GraphProto()
    step.CopyFrom(body)
    del step.output[:]
    step.node.extend([helper.make_node("Constant", [], ["__one"], value=numpy_helper.from_array(np.array(1, np.int64))),
                      helper.make_node("Add", [b_in[0], "__one"], ["__next"]),
                      helper.make_node("Constant", [], ["__axis0"], value=numpy_helper.from_array(np.array([0], np.int64)))])
    for k, o in enumerate(outs[1 + n_carried:]):
        step.node.extend([helper.make_node("Unsqueeze", [o, "__axis0"], [f"__row{k}"]) if ctx.opset >= 13 else
                          helper.make_node("Unsqueeze", [o], [f"__row{k}"], axes=[0]),
                          helper.make_node("Concat", [f"__acc{k}", f"__row{k}"], [f"__acc{k}_next"], axis=0)])
    names = ["__next", "__trip", outs[0], *outs[1:1 + n_carried], *[f"__acc{k}_next" for k in range(n_scan)],
             *[n for n, _, _ in runtime]]
    step.output.extend([helper.make_tensor_value_info(n, 0, None) for n in names])
    step_types = [(s if not name.startswith("__acc") else (2, *s[1:]), d) for name, (_, s, d) in zip(names, loop_vars)]
    step_model = branch_model(step, loop_vars, consts, step_types, ctx.opset, f"{ctx.node.name}/body")
    body_index = lower_subgraph(ctx, step_model, "loop body")
    # the WHILE op and its initial values
    trip = ctx.input(0) if ctx.has_input(0) else ctx.constant(np.array(_I64_MAX, np.int64), "trip")
    if ctx.has_input(0) and ctx.dtype(0) != np.int64 or ctx.has_input(0) and ctx.shape(0) not in ((), (1,)):
        ctx.unsupported("its trip count is not an int64 scalar")
    go = ctx.input(1) if ctx.has_input(1) else ctx.constant(np.array(True), "cond")
    if ctx.has_input(1) and ctx.shape(1) != ():
        go = _scalar(ctx, go, np.bool_, "cond")
    if ctx.has_input(0) and ctx.shape(0) != ():
        trip = _scalar(ctx, trip, np.int64, "trip")
    inputs = [ctx.constant(np.array(0, np.int64), "i0"), trip, go, *[ctx.input(2 + k) for k in range(n_carried)],
              *[ctx.b.tensor(f"{ctx.node.name}/acc{k}", shape, dtype) for k, (_, shape, dtype) in enumerate(accs)],
              *cap_tensors]
    for k in range(n_scan):  # the empty start of an accumulator: a zero-size tensor no op writes
        ctx.b.tensors[inputs[3 + n_carried + k]].signature = (-1, *accs[k][1][1:])
    outputs = [ctx.temp((), np.int64, "i"), ctx.temp((), np.int64, "trip_out"), ctx.temp((), np.bool_, "cond_out")]
    outputs += [ctx.output(k) for k in range(n_carried)]
    for k in range(n_scan):
        name = ctx.node.outputs[n_carried + k]
        t = ctx.b.tensor(name or f"{ctx.node.name}/scan{k}", accs[k][1], accs[k][2])
        ctx.b.tensors[t].signature = (-1, *accs[k][1][1:])
        if name:
            ctx._tensors[name] = t
        outputs.append(t)
    outputs += [ctx.temp(shape, dtype, f"cap{k}") for k, (_, shape, dtype) in enumerate(runtime)]
    options = S.WhileOptionsT()
    options.condSubgraphIndex, options.bodySubgraphIndex = cond_index, body_index
    ctx.emit("WHILE", inputs, outputs, options)


def _scalar(ctx: LowerCtx, t: int, dtype, tag: str) -> int:
    out = ctx.temp((), dtype, tag)
    ctx.emit("RESHAPE", [t, ctx.constant(np.array([], np.int32), f"{tag}_shape")], [out])
    return out
