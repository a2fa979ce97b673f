"""The op registry: one small function per ONNX op, registered with `@lowers("Conv")`.

Each rule has an optional `check(node) -> why | None` that runs without building anything, so
`unsupported(model)` can list every node that cannot be lowered (missing op or attribute value) in
one pass, and `lower()` refuses the same set before it starts.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from onnx import TensorProto

from edgec.graph.view import GraphView, NodeView  # noqa: F401  (the one ONNX graph view; re-exported)
from edgec.lower.coreml.names import NameTable
from edgec.registry import Registry, Rule  # noqa: F401  (Rule re-exported; rule.lower is rule.fn)

REGISTRY = Registry("CoreML lowerings", package="edgec.lower.coreml.ops")


def lowers(*op_types: str, check: Callable[["NodeView"], str | None] | None = None, note: str = "", **flags):
    """Register the decorated function as the lowering of `op_types` (one function per op family member)."""
    return REGISTRY.register(*op_types, check=check, note=note, **flags)


# ONNX element types we can carry, and what they become in MIL (CoreML has no int64: int32 instead)
MIL_DTYPE = {
    TensorProto.FLOAT: "fp32",
    TensorProto.FLOAT16: "fp16",
    TensorProto.INT64: "int32",
    TensorProto.INT32: "int32",
    TensorProto.INT16: "int32",
    TensorProto.INT8: "int32",
    TensorProto.UINT8: "int32",
    TensorProto.UINT16: "int32",
    TensorProto.BOOL: "bool",
    TensorProto.DOUBLE: "fp32",  # computed as float32 (CoreML has no float64); the build notes it
}

# types CoreML can read exactly as float32 / int32 (graph inputs and constants) but never produce: an op
# writing one would have to round to it, which no MIL op does
READ_ONLY_DTYPE = {
    TensorProto.BFLOAT16: "fp32",
    TensorProto.FLOAT8E4M3FN: "fp32",
    TensorProto.FLOAT8E4M3FNUZ: "fp32",
    TensorProto.FLOAT8E5M2: "fp32",
    TensorProto.FLOAT8E5M2FNUZ: "fp32",
    TensorProto.FLOAT4E2M1: "fp32",
    TensorProto.FLOAT8E8M0: "fp32",
    TensorProto.INT4: "int32",
    TensorProto.UINT4: "int32",
    TensorProto.INT2: "int32",
    TensorProto.UINT2: "int32",
}


def to_mil_array(value: np.ndarray) -> np.ndarray:
    """A constant as MIL stores it: int64 -> int32 (values clipped to int32, as ONNX uses INT64_MAX
    for "to the end" in Slice), float64 -> float32."""
    if value.dtype == np.float64 or value.dtype.kind == "V" and value.dtype.name.startswith(("float", "bfloat")):
        return value.astype(np.float32)
    if value.dtype.kind == "V":  # ml_dtypes int4 / uint4 / int2 / uint2
        return value.astype(np.int32)
    if value.dtype.kind in "iu" and value.dtype != np.int32:
        return np.clip(value, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
    return value


class Env:
    """The lowering state: ONNX tensor name -> MIL Var (or numpy constant, made a Var on first use)."""

    def __init__(self, graph: GraphView, names: NameTable):
        self.graph = graph
        self.names = names
        self.values: dict[str, Any] = {}
        self.const_vars: dict[str, Any] = {}
        self.opset = None  # the ct.target the program is built for (set by build_program)

    def value(self, n: NodeView, i: int):
        """The input as it is: numpy array for constants, MIL Var otherwise."""
        name = n.inputs[i]
        if name in self.values:
            return self.values[name]
        return self.graph.consts[name]

    def var(self, n: NodeView, i: int):
        """The input as a MIL Var; a constant becomes a named `const` op once."""
        from coremltools.converters.mil.mil import Builder as mb

        v = self.value(n, i)
        if not isinstance(v, np.ndarray):
            return v
        name = n.inputs[i]
        if name not in self.const_vars:
            self.const_vars[name] = mb.const(val=to_mil_array(v), name=self.names.reserve(name))
        return self.const_vars[name]

    def out(self, n: NodeView, i: int = 0) -> str:
        """MIL name for the node's i-th output (the ONNX tensor name, sanitised)."""
        return self.names.reserve(n.outputs[i])

    def tmp(self, n: NodeView, suffix: str) -> str:
        """A fresh MIL name for an intermediate op inside one lowering."""
        return self.names.fresh(f"{self.out(n)}_{suffix}")


def lower_nodes(model, view, env: Env) -> None:
    """Lower every node of `model`'s graph (its view: `view`) into the current MIL block, in order; each output's
    MIL var lands in env.values under its ONNX name."""
    for i, node in enumerate(model.graph.node):
        nv = NodeView(node, i, view)
        result = REGISTRY[node.op_type].lower(nv, env)
        for name, value in zip(nv.outputs, result if isinstance(result, (list, tuple)) else [result]):
            if name:
                env.values[name] = value
