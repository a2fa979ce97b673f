"""Control flow on a run-time value: If -> IF with both branches as subgraphs (control_flow.py). An If whose
condition is known at build time never gets here: edgec's fold inlines it."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.control_flow import branch_model, captured, lower_subgraph
from edgec.lower.tflite.registry import LowerCtx, lowers


@lowers("If")
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
