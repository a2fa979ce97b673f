"""edgec.CutToLength (edgec.graph.generalize): a constant cut along one axis to another tensor's run-time length,
e.g. a position-embedding table cut to the sequence length. MIL: shape -> slice_by_index -> slice_by_size."""

from __future__ import annotations

import numpy as np

from edgec.lower.coreml.registry import lowers


@lowers("CutToLength", note="edgec's own node for a length-dependent constant (dynamic lengths)", internal=True)
def cut_to_length(n, env):
    from coremltools.converters.mil.mil import Builder as mb

    table, source = env.var(n, 0), env.var(n, 1)
    axis, source_axis = int(n.attr("axis")), int(n.attr("source_axis"))
    rank = len(n.shape(0))
    dims = mb.shape(x=source, name=env.tmp(n, "shape"))
    length = mb.slice_by_index(x=dims, begin=[source_axis], end=[source_axis + 1], name=env.tmp(n, "len"))
    size = mb.concat(values=[np.full(axis, -1, np.int32), length, np.full(rank - axis - 1, -1, np.int32)], axis=0,
                     name=env.tmp(n, "size"))
    return mb.slice_by_size(x=table, begin=np.zeros(rank, np.int32), size=size, name=env.out(n))
