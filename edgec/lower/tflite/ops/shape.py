"""Shape ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Identity, Dropout."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ops._util import const_output
from edgec.lower.tflite.registry import LowerCtx, lowers


def reshape_to(ctx: LowerCtx, x: int, out: int, shape) -> None:
    opts = S.ReshapeOptionsT()
    opts.newShape = [int(d) for d in shape]
    ctx.emit("RESHAPE", [x, ctx.constant(np.array(shape, np.int32), "shape")], [out], opts)


@lowers("int8.Reshape", "int8.Flatten", "int8.Squeeze", "int8.Unsqueeze", float_kernel=True, same_scale=True,
         int16=True)
@lowers("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def reshape(ctx: LowerCtx) -> None:
    """RESHAPE to the statically inferred output shape (the layout pass keeps NCHW order before it)."""
    reshape_to(ctx, ctx.input(0), ctx.output(0), ctx.out_shape(0))


@lowers("int8.Transpose", float_kernel=True, same_scale=True, int16=True)
@lowers("Transpose")
def transpose(ctx: LowerCtx) -> None:
    """TRANSPOSE, or RESHAPE when only size-1 axes move (e.g. NHWC->NCHW of N x 1 x 1 x C)."""
    shape = ctx.shape(0)
    perm = [int(p) for p in ctx.attr("perm", list(reversed(range(len(shape)))))]
    moved = [p for p in perm if shape[p] != 1]
    if moved == sorted(moved):
        return reshape_to(ctx, ctx.input(0), ctx.output(0), ctx.out_shape(0))
    if len(perm) > 6:
        ctx.unsupported(f"rank {len(perm)} > 6")
    ctx.emit("TRANSPOSE", [ctx.input(0), ctx.constant(np.array(perm, np.int32), "perm")], [ctx.output(0)],
             S.TransposeOptionsT())


@lowers("Concat")
def concat(ctx: LowerCtx) -> None:
    """CONCATENATION."""
    rank = len(ctx.out_shape(0))
    axis = int(ctx.attr("axis"))
    opts = S.ConcatenationOptionsT()
    opts.axis = axis + rank if axis < 0 else axis
    inputs = [ctx.input(i) for i, name in enumerate(ctx.node.inputs) if name and np.prod(ctx.shape(i)) > 0]
    if len(inputs) == 1:
        return reshape_to(ctx, inputs[0], ctx.output(0), ctx.out_shape(0))
    ctx.emit("CONCATENATION", inputs, [ctx.output(0)], opts)


@lowers("Identity", "Dropout")
def identity(ctx: LowerCtx) -> None:
    """No op: the output is the input tensor (inference-mode Dropout, or a ratio of 0); the mask is all true."""
    if ctx.node.op == "Dropout" and ctx.has_input(2) and (ctx.const(2) is None or bool(ctx.const(2))):
        ratio = ctx.const(1) if ctx.has_input(1) else np.array(0.5)
        if ratio is None or float(np.asarray(ratio).reshape(-1)[0]) != 0.0:
            ctx.unsupported("training_mode Dropout (random)")
    if len(ctx.node.outputs) > 1 and ctx.node.outputs[1]:
        const_output(ctx, 1, np.ones(ctx.out_shape(1), bool))
    ctx.alias(0, ctx.input(0))
