"""The op registry: one small function per ONNX op, registered with `@lowers("Conv")`.

Each rule has an optional `check(node) -> why | None` that runs without building anything, so
`unsupported(model)` can list every node that cannot be lowered (missing op or attribute value) in
one pass, and `lower()` refuses the same set before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec.lower.coreml.names import NameTable


@dataclass(frozen=True)
class Rule:
    lower: Callable[["NodeView", "Env"], Any]
    check: Callable[["NodeView"], str | None] | None
    note: str


REGISTRY: dict[str, Rule] = {}


def lowers(*op_types: str, check: Callable[["NodeView"], str | None] | None = None, note: str = ""):
    """Register the decorated function as the lowering of `op_types` (one function per op family member)."""

    def deco(fn):
        for op in op_types:
            if op in REGISTRY:
                raise RuntimeError(f"two CoreML lowerings registered for {op}")
            REGISTRY[op] = Rule(fn, check, note or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return deco


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


class GraphView:
    """Static facts about the ONNX graph: constants (initializers, Constant nodes) and tensor types."""

    def __init__(self, model: onnx.ModelProto):
        try:  # the pipeline hands us inferred shapes; infer again so a bare model is handled the same
            model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except Exception:  # an inference failure leaves shapes unknown; checks then say which are missing
            pass
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and len(node.attribute) == 1:
                a = node.attribute[0]
                if a.name == "value":
                    self.consts[node.output[0]] = numpy_helper.to_array(a.t)
                elif a.name in ("value_float", "value_int", "value_floats", "value_ints"):
                    self.consts[node.output[0]] = np.array(
                        helper.get_attribute_value(a), dtype=np.float32 if "float" in a.name else np.int64
                    )
        self.types: dict[str, tuple[int, list[int] | None]] = {}
        for v in list(graph.input) + list(graph.value_info) + list(graph.output):
            t = v.type.tensor_type
            dims = None
            if t.HasField("shape"):
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
                if any(d < 0 for d in dims):
                    dims = None
            self.types[v.name] = (t.elem_type, dims)
        for name, arr in self.consts.items():
            self.types[name] = (helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape))
        self.consumers: dict[str, list[str]] = {}  # tensor -> op types reading it
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node.op_type)
        self.graph_outputs = {o.name for o in graph.output}


class NodeView:
    """One ONNX node with attribute defaults and static input facts; what checks and lowerings read."""

    def __init__(self, node: onnx.NodeProto, index: int, graph: GraphView):
        self.node = node
        self.op = node.op_type
        self.name = node.name or f"{node.op_type}_{index}"
        self.inputs = list(node.input)
        self.outputs = list(node.output)
        self.graph = graph
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def attr(self, name: str, default: Any = None) -> Any:
        v = self.attrs.get(name, default)
        return v.decode() if isinstance(v, bytes) else v

    def has(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] != ""

    def const(self, i: int) -> np.ndarray | None:
        return self.graph.consts.get(self.inputs[i]) if self.has(i) else None

    def shape(self, i: int) -> list[int] | None:
        t = self.graph.types.get(self.inputs[i]) if self.has(i) else None
        return t[1] if t else None

    def dtype(self, i: int) -> int | None:
        t = self.graph.types.get(self.inputs[i]) if self.has(i) else None
        return t[0] if t else None

    def out_shape(self, i: int = 0) -> list[int] | None:
        t = self.graph.types.get(self.outputs[i])
        return t[1] if t else None

    def out_dtype(self, i: int = 0) -> int | None:
        t = self.graph.types.get(self.outputs[i])
        return t[0] if t else None


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
