"""Control flow on a run-time value: If -> MIL cond, both branches as blocks (control_flow.py). An If whose
condition is known at build time never gets here: edgec's fold inlines it."""

from __future__ import annotations

from edgec.lower.coreml.control_flow import body_model, body_problem, lower_body
from edgec.lower.coreml.registry import Env, NodeView, lowers

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
