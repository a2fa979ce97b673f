"""The one read-only view of an ONNX graph that passes, lowerings and the estimator share.

Constants (initializers and Constant nodes, decoded here and nowhere else), tensor types and static shapes,
consumers and producers, attributes with their ONNX defaults, and ONNX's auto_pad rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

DOMAINS = ("", "ai.onnx")
# Constant's scalar/list attributes and the dtype ONNX gives them (string and sparse values are not decoded)
_CONSTANT_LISTS = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
                   "value_ints": np.int64}


def constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a Constant node as numpy, or None when it holds a string/sparse value (or is malformed)."""
    if node.op_type != "Constant" or not _decodable(node):
        return None
    a = node.attribute[0]
    if a.name == "value":
        return numpy_helper.to_array(a.t)
    if a.name in _CONSTANT_LISTS:
        return np.array(helper.get_attribute_value(a), dtype=_CONSTANT_LISTS[a.name])
    return None


class Constants(Mapping):
    """Tensor name -> value of every initializer and decodable Constant node, each decoded on first read (a
    pass that looks at a few constants does not pay for decoding every weight)."""

    def __init__(self, graph: onnx.GraphProto):
        self._protos: dict[str, onnx.TensorProto | onnx.NodeProto] = {t.name: t for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.output and _decodable(node):
                self._protos[node.output[0]] = node
        self._values: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._values:
            p = self._protos[name]
            self._values[name] = constant_value(p) if isinstance(p, onnx.NodeProto) else numpy_helper.to_array(p)
        return self._values[name]

    def __contains__(self, name) -> bool:
        return name in self._protos

    def __iter__(self) -> Iterator[str]:
        return iter(self._protos)

    def __len__(self) -> int:
        return len(self._protos)


def _decodable(node: onnx.NodeProto) -> bool:
    return ((node.domain or "") in DOMAINS and len(node.attribute) == 1
            and (node.attribute[0].name == "value" or node.attribute[0].name in _CONSTANT_LISTS))


def constants(graph: onnx.GraphProto | onnx.ModelProto) -> Constants:
    """Tensor name -> value of every initializer and decodable Constant node (decoded lazily)."""
    return Constants(graph.graph if isinstance(graph, onnx.ModelProto) else graph)


def consumers(graph: onnx.GraphProto | onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Tensor name -> the nodes reading it, in graph order (a node reading a tensor twice appears twice)."""
    graph = graph.graph if isinstance(graph, onnx.ModelProto) else graph
    uses: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            uses.setdefault(name, []).append(node)
    return uses


def uses(graph: onnx.GraphProto | onnx.ModelProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    """Tensor name -> (node, input index) of every read, in graph order."""
    graph = graph.graph if isinstance(graph, onnx.ModelProto) else graph
    out: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            out.setdefault(name, []).append((node, i))
    return out


def producers(graph: onnx.GraphProto | onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    graph = graph.graph if isinstance(graph, onnx.ModelProto) else graph
    return {o: n for n in graph.node for o in n.output}


def opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in DOMAINS), 1)


def tensor_types(model: onnx.ModelProto) -> dict[str, tuple[int, list[int] | None]]:
    """Tensor name -> (ONNX elem type, static shape or None when any dim is unknown), constants included."""
    graph = model.graph
    types: dict[str, tuple[int, list[int] | None]] = {}
    for v in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = v.type.tensor_type
        dims = None
        if t.HasField("shape") and all(d.HasField("dim_value") and d.dim_value >= 0 for d in t.shape.dim):
            dims = [d.dim_value for d in t.shape.dim]
        types[v.name] = (t.elem_type, dims)
    for t in graph.initializer:  # read off the protos: no weight is decoded for its type
        types[t.name] = (t.data_type, list(t.dims))
    for node in graph.node:
        if node.op_type != "Constant" or not _decodable(node):
            continue
        a = node.attribute[0]
        if a.name == "value":
            types[node.output[0]] = (a.t.data_type, list(a.t.dims))
        elif a.name in _CONSTANT_LISTS:
            value = constant_value(node)
            types[node.output[0]] = (helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape))
    return types


def attrs(node: onnx.NodeProto) -> dict[str, Any]:
    """The attributes the node sets, decoded (strings as str)."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


@lru_cache(maxsize=None)
def attr_defaults(op_type: str, version: int, domain: str = "") -> dict[str, Any]:
    """The defaults ONNX's schema gives the op's attributes at this opset (unknown op: none)."""
    try:
        schema = onnx.defs.get_schema(op_type, version, domain)
    except Exception:  # noqa: BLE001 - onnx raises SchemaError for ops it does not know
        return {}
    out = {}
    for name, a in schema.attributes.items():
        if a.default_value.type != onnx.AttributeProto.UNDEFINED:
            v = helper.get_attribute_value(a.default_value)
            out[name] = v.decode() if isinstance(v, bytes) else v
    return out


def auto_pad_pads(auto: str, pads: list[int] | None, in_spatial: list[int], kernel: list[int],
                  strides: list[int], dilations: list[int]) -> tuple[list[int], list[int]]:
    """ONNX's padding rule: (begin, end) per spatial axis from `pads` or `auto_pad` (SAME_* against the static
    input size: output ceil(in / stride), the odd pixel at the end for SAME_UPPER, at the start for SAME_LOWER)."""
    n = len(in_spatial)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s, d in zip(in_spatial, kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        return begin, end
    if auto == "VALID":
        return [0] * n, [0] * n
    pads = [int(p) for p in (pads if pads is not None else [0] * (2 * n))]
    return pads[:n], pads[n:]


class GraphView:
    """Static facts about an ONNX graph: constants, tensor types, consumers, graph outputs and the opset.

    infer: run shape inference first (a bare model gets the same view as one the pipeline already inferred)."""

    def __init__(self, model: onnx.ModelProto, infer: bool = True):
        if infer:
            try:
                model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
            except Exception:  # noqa: BLE001 - an inference failure leaves shapes unknown; checks say which
                pass
        self.model = model
        self.opset = opset(model)
        self.consts: dict[str, np.ndarray] = constants(model.graph)
        self.types = tensor_types(model)
        self.nodes_reading = consumers(model.graph)
        # tensor -> op types reading it (what lowerings ask: "does only a Q read this?")
        self.consumers: dict[str, list[str]] = {k: [n.op_type for n in v] for k, v in self.nodes_reading.items()}
        self.producers = producers(model.graph)
        self.graph_outputs = {o.name for o in model.graph.output}


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
        """The attribute as set, else `default` (strings decoded)."""
        v = self.attrs.get(name, default)
        return v.decode() if isinstance(v, bytes) else v

    def attr_or_default(self, name: str) -> Any:
        """The attribute as set, else ONNX's own default for this op at the graph's opset (None: it has none)."""
        if name in self.attrs:
            return self.attr(name)
        return attr_defaults(self.op, self.graph.opset, self.node.domain or "").get(name)

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

    def pads(self, in_spatial: list[int], kernel: list[int], strides: list[int],
             dilations: list[int]) -> tuple[list[int], list[int]]:
        return auto_pad_pads(self.attr("auto_pad", "NOTSET"), self.attr("pads"), in_spatial, kernel, strides,
                             dilations)
