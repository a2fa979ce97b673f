"""A small mutable graph the TFLite lowering works on: nodes, constants, static shapes and dtypes.

ONNX protos are awkward to rewrite in place; the layout pass and the lowerings use this instead.
Constants (initializers and Constant nodes) are numpy arrays; every tensor has a static shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import LoweringError
from edgec.graph.view import constant_value


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    nhwc: bool = False  # set by the layout pass: input 0 and output 0 are channels-last


@dataclass
class Graph:
    nodes: list[Node]
    consts: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, np.dtype]
    inputs: list[str]
    outputs: list[str]
    opset: int = 13
    _counter: int = 0
    # int8 state of a QDQ model, filled by qdq.fold_qdq (empty for a float graph)
    quant: dict = field(default_factory=dict)  # tensor -> builder.Quant of an int8 (or int16) activation
    qconst: dict = field(default_factory=dict)  # constant -> (int array, scale, zero_point, axis)
    int8_nodes: set[str] = field(default_factory=set)  # nodes folded into int8 kernels
    node_quant: dict = field(default_factory=dict)  # (node, output index) -> (Quant, dtype), across the layout pass
    node_qconst: dict = field(default_factory=dict)  # (node, input index) -> (scale, zero_point, axis)

    def fresh(self, base: str) -> str:
        """A tensor name not used yet (deterministic: a counter, not a random suffix)."""
        while True:
            self._counter += 1
            name = f"{base}__{self._counter}"
            if name not in self.shapes and name not in self.consts:
                return name

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out


def _attr(a: onnx.AttributeProto):
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode() for x in v]
    return v


def _dims(t: onnx.TypeProto) -> tuple[int, ...] | None:
    if not t.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in t.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:  # -1: paddle2onnx's "dynamic"
            return None
        dims.append(d.dim_value)
    return tuple(dims)


def from_onnx(model: onnx.ModelProto) -> Graph:
    """Static-shape IR of `model` (shape inference is run here; dynamic dims are a LoweringError)."""
    model = _without_negative_dims(model)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # inference is a help, not a requirement: value_info may already be there
        pass
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, np.dtype] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.name in consts:
            continue
        dims = _dims(vi.type)
        if dims is not None:
            shapes[vi.name] = dims
        if vi.type.tensor_type.elem_type:
            dtypes[vi.name] = np.dtype(helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
    for name, arr in consts.items():
        shapes[name], dtypes[name] = arr.shape, arr.dtype
    nodes = []
    for i, n in enumerate(g.node):
        attrs = {a.name: _attr(a) for a in n.attribute}
        if n.op_type == "Constant" and (n.domain or "") in ("", "ai.onnx"):
            value = constant_value(n)
            if value is None:
                raise LoweringError(f"Constant node '{n.name}' has no value this backend can read.")
            consts[n.output[0]] = np.asarray(value)
            shapes[n.output[0]], dtypes[n.output[0]] = consts[n.output[0]].shape, consts[n.output[0]].dtype
            continue
        nodes.append(Node(n.op_type if (n.domain or "") in ("", "ai.onnx") else f"{n.domain}.{n.op_type}",
                          n.name or f"{n.op_type}_{i}", list(n.input), list(n.output), attrs))
    inputs = [vi.name for vi in g.input if vi.name not in consts]
    for name in inputs:
        if name not in shapes:
            raise LoweringError(f"Model input '{name}' has a dynamic or unknown shape; fix it with --input-shape.")
    return Graph(nodes, consts, shapes, dtypes, inputs, [o.name for o in g.output], opset)


def _without_negative_dims(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with declared dim_value -1 (paddle2onnx's "dynamic") cleared, when there is any. ONNX shape
    inference keeps a declared dim that has a value over the inferred one, so a graph output declared [-1, 2]
    stayed [-1, 2] and reached the file as a tensor LiteRT refuses to load (PP-OCR's cls head)."""
    def values(m):
        g = m.graph
        return [vi for vi in [*g.input, *g.output, *g.value_info] if vi.type.HasField("tensor_type")]

    if not any(d.HasField("dim_value") and d.dim_value < 0 for vi in values(model) for d in vi.type.tensor_type.shape.dim):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for vi in values(copy):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value < 0:
                d.ClearField("dim_value")
    return copy


def perm_shape(shape: tuple[int, ...], perm: list[int]) -> tuple[int, ...]:
    return tuple(shape[p] for p in perm)


def inverse(perm: list[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def transpose_node(src: str, dst: str, perm: list[int], name: str) -> Node:
    return Node("Transpose", name, [src], [dst], {"perm": list(perm)})


F64, F32 = np.dtype(np.float64), np.dtype(np.float32)


def narrow_float64(g: Graph) -> dict[str, str]:
    """float64 is computed as float32 (almost no TFLite kernel takes float64): float64 inputs get a Cast to
    float32 on entry, float64 outputs one back on exit, every tensor/constant/dtype attribute in between is
    float32. Returns {ONNX name: IR tensor now carrying it} of the float64 inputs/outputs."""
    inner = [n for n, d in g.dtypes.items() if d == F64]
    if not inner:
        return {}
    for name in inner:
        g.dtypes[name] = F32
    for name, value in list(g.consts.items()):
        if value.dtype == F64:
            g.consts[name] = value.astype(np.float32)
    for n in g.nodes:
        for key in ("to", "dtype"):
            if n.attrs.get(key) == onnx.TensorProto.DOUBLE:
                n.attrs[key] = onnx.TensorProto.FLOAT
        if isinstance(n.attrs.get("value"), np.ndarray) and n.attrs["value"].dtype == F64:
            n.attrs["value"] = n.attrs["value"].astype(np.float32)
    boundary = {}
    for i, name in enumerate(list(g.inputs)):
        if name in inner:
            src = g.fresh(f"{name}_f64")
            g.shapes[src], g.dtypes[src] = g.shapes[name], F64
            g.nodes.insert(0, Node("Cast", f"{name}/to_float32", [src], [name], {"to": onnx.TensorProto.FLOAT}))
            g.inputs[i] = boundary[name] = src
    for i, name in enumerate(list(g.outputs)):
        if name in inner and name not in g.inputs:
            dst = g.fresh(f"{name}_f64")
            g.shapes[dst], g.dtypes[dst] = g.shapes.get(name, ()), F64
            g.nodes.append(Node("Cast", f"{name}/to_float64", [name], [dst], {"to": onnx.TensorProto.DOUBLE}))
            g.outputs[i] = boundary[name] = dst
    return boundary


_WIDENED_UNSIGNED = {np.dtype(np.uint16), np.dtype(np.uint32)}
_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearMatMul", "QLinearConv",
              "MatMulInteger", "ConvInteger"}
I64 = np.dtype(np.int64)


def widen_unsigned(g: Graph) -> dict[str, str]:
    """uint16/uint32 are computed as int64 (LiteRT's arithmetic kernels take neither): CAST in on entry, back
    on exit (wrapping mod 2^16 / 2^32 like ONNX Runtime's unsigned arithmetic), int64 in between. Ops whose
    result depends on the width (BitShift, bitwise ops) see int64 and refuse it. Returns {ONNX name: IR
    tensor now carrying it} of the uint16/uint32 inputs/outputs."""
    inner = {n: d for n, d in g.dtypes.items() if d in _WIDENED_UNSIGNED}
    quantized = {t for n in g.nodes if n.op in _QUANT_OPS for t in [*n.inputs, *n.outputs]}
    if not inner or quantized & set(inner):  # uint16 quantization: the width is the point, leave it (refused)
        return {}
    for name in inner:
        g.dtypes[name] = I64
    for name, value in list(g.consts.items()):
        if value.dtype in _WIDENED_UNSIGNED:
            g.consts[name] = value.astype(np.int64)
    for n in g.nodes:
        for key in ("to", "dtype", "output_dtype"):
            if n.attrs.get(key) in (onnx.TensorProto.UINT16, onnx.TensorProto.UINT32):
                n.attrs[key] = onnx.TensorProto.INT64
        if isinstance(n.attrs.get("value"), np.ndarray) and n.attrs["value"].dtype in _WIDENED_UNSIGNED:
            n.attrs["value"] = n.attrs["value"].astype(np.int64)
    boundary = {}
    for i, name in enumerate(list(g.inputs)):
        if name in inner:
            src = g.fresh(f"{name}_{inner[name].name}")
            g.shapes[src], g.dtypes[src] = g.shapes[name], inner[name]
            g.nodes.insert(0, Node("Cast", f"{name}/to_int64", [src], [name], {"to": onnx.TensorProto.INT64}))
            g.inputs[i] = boundary[name] = src
    for i, name in enumerate(list(g.outputs)):
        if name in inner and name not in g.inputs:
            dst = g.fresh(f"{name}_{inner[name].name}")
            g.shapes[dst], g.dtypes[dst] = g.shapes.get(name, ()), inner[name]
            to = onnx.helper.np_dtype_to_tensor_dtype(inner[name])
            g.nodes.append(Node("Cast", f"{name}/to_{inner[name].name}", [name], [dst], {"to": to}))
            g.outputs[i] = boundary[name] = dst
    return boundary
