"""edgec.CutToLength (edgec.graph.generalize): a constant cut along one axis to another tensor's run-time length
(a position-embedding table cut to the sequence length): SHAPE -> STRIDED_SLICE -> CONCATENATION -> SLICE."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers


@lowers("edgec.CutToLength", note="edgec's own node for a length-dependent constant (dynamic lengths)",
        internal=True)  # not an ONNX op: left out of the op-support tables
def cut_to_length(ctx: LowerCtx) -> None:
    axis, source_axis = int(ctx.attr("axis")), int(ctx.attr("source_axis"))
    rank, source_rank = len(ctx.shape(0)), len(ctx.shape(1))
    shape_opts = S.ShapeOptionsT()
    shape_opts.outType = S.TensorType.INT32
    dims = ctx.temp((source_rank,), np.int32, "dims")
    ctx.emit("SHAPE", [ctx.input(1)], [dims], shape_opts)
    length = ctx.temp((1,), np.int32, "len")
    ctx.emit("STRIDED_SLICE", [dims, ctx.constant(np.array([source_axis], np.int32), "at"),
                               ctx.constant(np.array([source_axis + 1], np.int32), "at1"),
                               ctx.constant(np.array([1], np.int32), "one")], [length], S.StridedSliceOptionsT())
    parts = ([ctx.constant(np.full(axis, -1, np.int32), "before")] if axis else []) + [length] + (
        [ctx.constant(np.full(rank - axis - 1, -1, np.int32), "after")] if axis < rank - 1 else [])
    size = ctx.temp((rank,), np.int32, "size")
    concat = S.ConcatenationOptionsT()
    concat.axis = 0
    ctx.emit("CONCATENATION", parts, [size], concat)
    ctx.emit("SLICE", [ctx.input(0), ctx.constant(np.zeros(rank, np.int32), "begin"), size], [ctx.output(0)])
