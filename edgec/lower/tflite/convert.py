"""ONNX model -> TFLite bytes: IR, layout pass, one registry lowering per node, activation fusion, writer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from edgec.lower.tflite import ops  # noqa: F401  (registers every op family)
from edgec.lower.tflite.builder import TFL_TYPE, ModelBuilder
from edgec.lower.tflite.fuse import fold_conv_affine
from edgec.lower.tflite.ir import from_onnx
from edgec.lower.tflite.layout import to_nhwc
from edgec.lower.tflite.registry import REGISTRY, LowerCtx, Unsupported
from edgec.lower.tflite.writer import serialize


@dataclass
class Converted:
    data: bytes | None
    problems: list[tuple[str, str, str]]
    stats: dict = field(default_factory=dict)
    op_histogram: dict = field(default_factory=dict)


def convert(model: onnx.ModelProto, fp16: bool = False, write: bool = True, external: bool | None = None,
            keep_float: set[str] = frozenset()) -> Converted:
    """Lower `model`; with fp16, float weights are stored as float16 except those of nodes whose name or op
    type is in `keep_float`. `external` forces (True) or forbids (False) weights after the flatbuffer."""
    g = from_onnx(model)
    folded = fold_conv_affine(g)
    stats = to_nhwc(g)
    stats["folded_into_conv"] = folded
    b = ModelBuilder(fp16_weights=fp16, dry=not write)
    tensors: dict[str, int] = {}
    problems = []
    for name in g.inputs:
        if np.dtype(g.dtypes[name]) not in TFL_TYPE:  # an UnsupportedOp, not a ValueError from the builder
            problems.append(("Input", name, f"dtype {np.dtype(g.dtypes[name])} has no TFLite tensor type"))
            continue
        tensors[name] = b.tensor(name, g.shapes[name], g.dtypes[name])
        b.inputs.append(tensors[name])
    if problems:
        return Converted(None, problems, stats)
    for node in g.nodes:
        for name in node.inputs:  # after a failed node, stand-ins let later nodes still check themselves
            if name and name not in tensors and name not in g.consts and name in g.shapes and problems:
                tensors[name] = b.tensor(name, g.shapes[name], g.dtypes.get(name, np.float32))
        b.fp16_weights = fp16 and node.op not in keep_float and node.name not in keep_float
        rule = REGISTRY.get(node.op)
        if rule is None:
            problems.append((node.op, node.name, "no TFLite lowering for this op"))
            continue
        try:
            rule.fn(LowerCtx(g, b, tensors, node))
        except Unsupported as e:
            problems.append((node.op, node.name, str(e)))
    if problems or not write:
        return Converted(None, problems, stats)
    for name in g.outputs:
        if name in g.inputs or name in g.consts:
            problems.append(("Identity", name, "graph output is a graph input or constant (no op computes it)"))
        else:
            b.outputs.append(tensors[name])
    if problems:
        return Converted(None, problems, stats)
    stats["fused_activations"] = b.fuse_activations()
    stats["maxpool_pads_relaxed"] = b.relax_maxpool_pads()
    hist: dict[str, int] = {}
    for op in b.ops:
        hist[op.code] = hist.get(op.code, 0) + 1
    stats["transpose_ops"] = hist.get("TRANSPOSE", 0)
    sig = ([(n, tensors[n]) for n in g.inputs], [(n, tensors[n]) for n in g.outputs])
    return Converted(serialize(b, sig, external=external), [], stats, dict(sorted(hist.items())))
