"""Control flow on a run-time value: If -> MIL cond with both branches as blocks, Loop -> MIL while_loop
(control_flow.py). An If whose condition is known at build time never gets here (edgec's fold inlines it), nor
a small Loop with a constant trip count (graph/unroll.py unrolls it)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from edgec.graph.loop_body import static_slices
from edgec.lower.coreml.control_flow import body_model, body_problem, lower_body
from edgec.lower.coreml.registry import MIL_DTYPE, Env, GraphView, NodeView, lowers

_BRANCHES = ("then_branch", "else_branch")


def _branches(n: NodeView):
    outs = [n.graph.types.get(o, (0, None)) for o in n.outputs]
    return [body_model(n, n.attrs[b], [], outs) for b in _BRANCHES]


def _check_if(n: NodeView) -> str | None:
    shape = n.graph.types.get(n.inputs[0], (0, None))[1]
    if shape is None or len(shape) > 1 or (shape and shape[0] != 1):
        return f"its condition has shape {shape}; MIL cond takes one bool"
    for o in n.outputs:
        if n.graph.types.get(o, (0, None))[1] is None:
            return f"output '{o}' has no static shape (the branches disagree or shape inference could not tell)"
    for model, b in zip(_branches(n), _BRANCHES):
        why = body_problem(model, b.replace("_", " "))
        if why:
            return why
    return None


@lowers("If", check=_check_if)
def if_(n: NodeView, env: Env):
    """cond(pred, then block, else block); the blocks read the enclosing vars directly"""
    from coremltools.converters.mil.mil import Builder as mb

    pred = env.var(n, 0)
    if pred.rank == 1:
        pred = mb.squeeze(x=pred, name=env.tmp(n, "pred"))
    then_m, else_m = _branches(n)
    result = mb.cond(pred=pred, _true_fn=lambda: tuple(lower_body(then_m, env, {})),
                     _false_fn=lambda: tuple(lower_body(else_m, env, {})), name=env.out(n))
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _scalar(v):
    """v (one element) as a MIL scalar: a while_loop var must come back with the type it went in with, and ops
    give a one-element result either as a scalar or as a rank-0 tensor."""
    from coremltools.converters.mil.mil import Builder as mb

    return mb.squeeze(x=mb.reshape(x=v, shape=[1]))


def _declared(o) -> tuple[int, list[int] | None]:
    t = o.type.tensor_type
    dims = [d.dim_value for d in t.shape.dim] if t.HasField("shape") and all(
        d.HasField("dim_value") for d in t.shape.dim) else None
    return t.elem_type, dims


def _loop_body(n: NodeView):
    """The body as a model: formal inputs typed from the Loop's inputs; outputs as the body declares them."""
    body = n.attrs["body"]
    b_in = [i.name for i in body.input]
    carried = [(name, *n.graph.types.get(x, (0, None))) for name, x in zip(b_in[2:], n.inputs[2:])]
    formal = [(b_in[0], TensorProto.INT64, []), (b_in[1], TensorProto.BOOL, []), *carried]
    outs = [(TensorProto.BOOL, [])] + [(e, s) for _, e, s in carried] + [
        _declared(o) for o in body.output[1 + len(carried):]]
    return static_slices(body_model(n, body, formal, outs), b_in[0])  # x[i:i + 1]: a Gather at a run-time index


def _check_loop(n: NodeView) -> str | None:
    for i, what in ((0, "trip count"), (1, "condition")):
        if n.has(i):
            shape = n.graph.types.get(n.inputs[i], (0, None))[1]
            if shape is None or int(np.prod(shape)) != 1:
                return f"its {what} has shape {shape}; while_loop takes one value"
    for x in n.inputs[2:]:
        if n.graph.types.get(x, (0, None))[1] is None:
            return f"loop-carried '{x}' has no static shape"
    return body_problem(_loop_body(n), "body")


@lowers("Loop", check=_check_loop)
def loop(n: NodeView, env: Env):
    """while_loop over (i, M, cond, carried..., scan accumulators...): the body block runs the ONNX body, counts
    i and appends each scan output to its accumulator (started with one placeholder row, dropped after the
    loop: CoreML has no zero-size tensors; the accumulators' length is a symbolic dim)"""
    from coremltools.converters.mil.mil import Builder as mb

    model = _loop_body(n)
    body = n.attrs["body"]
    b_in = [i.name for i in body.input]
    n_carried = len(b_in) - 2
    n_scan = len(body.output) - 1 - n_carried
    view = GraphView(model)
    elems = [view.types.get(o.name, (0, None)) for o in body.output[1 + n_carried:]]
    for (elem, shape), o in zip(elems, body.output[1 + n_carried:]):
        if shape is None:
            raise ValueError(f"scan output '{o.name}' has no static shape")  # _check_loop's body check rules it out

    def scalar(i, dtype, default, tag):
        if not n.has(i):
            return _scalar(mb.const(val=np.array([default], dtype), name=env.tmp(n, tag)))
        return _scalar(env.var(n, i))

    trip = scalar(0, np.int32, np.iinfo(np.int32).max, "trip")
    go = scalar(1, np.bool_, True, "go")
    start = _scalar(mb.const(val=np.array([0], np.int32), name=env.tmp(n, "i0")))
    carried = [env.var(n, 2 + k) for k in range(n_carried)]
    carried = [_scalar(v) if not v.shape else v for v in carried]
    accs = [mb.const(val=np.zeros((1, *shape), np.float32 if MIL_DTYPE.get(elem) in ("fp32", "fp16") else
                                  np.int32 if MIL_DTYPE.get(elem) == "int32" else np.bool_),
                     name=env.tmp(n, f"acc{k}")) for k, (elem, shape) in enumerate(elems)]

    def cond(i, m, c, *rest):
        return mb.logical_and(x=mb.less(x=i, y=m), y=c)

    def step(i, m, c, *rest):
        outs = lower_body(model, env, {b_in[0]: i, b_in[1]: c, **dict(zip(b_in[2:], rest[:n_carried]))})
        grown = [mb.concat(values=[acc, mb.expand_dims(x=y, axes=[0])], axis=0)
                 for acc, y in zip(rest[n_carried:], outs[1 + n_carried:])]
        carried_out = [_scalar(v) if not v.shape else v for v in outs[1:1 + n_carried]]
        return (mb.add(x=i, y=np.int32(1)), mb.identity(x=m), _scalar(outs[0]), *carried_out, *grown)

    result = mb.while_loop(_cond=cond, _body=step, loop_vars=(start, trip, go, *carried, *accs),
                           name=env.tmp(n, "while"))
    outputs = list(result[3:3 + n_carried])
    for k in range(n_scan):
        rank = 1 + len(elems[k][1])
        outputs.append(mb.slice_by_index(x=result[3 + n_carried + k], begin=[1] + [0] * (rank - 1),
                                         end=[0] * rank, end_mask=[True] * rank,
                                         name=env.out(n, n_carried + k) if n.outputs[n_carried + k] else
                                         env.tmp(n, f"scan{k}")))
    return outputs
