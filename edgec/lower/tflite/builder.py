"""The TFLite graph under construction: tensors, constant buffers, operators (one subgraph).

Lowerings add to it through the LowerCtx in registry.py; writer.py turns it into flatbuffer bytes.
Quantization parameters ride on each tensor (`Quant`) so int8 kernels can be added without new plumbing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as S

TFL_TYPE = {
    np.dtype(np.float32): S.TensorType.FLOAT32, np.dtype(np.float16): S.TensorType.FLOAT16,
    np.dtype(np.int32): S.TensorType.INT32, np.dtype(np.int64): S.TensorType.INT64,
    np.dtype(np.uint8): S.TensorType.UINT8, np.dtype(np.int8): S.TensorType.INT8,
    np.dtype(np.int16): S.TensorType.INT16, np.dtype(np.bool_): S.TensorType.BOOL,
    np.dtype(np.float64): S.TensorType.FLOAT64,
    # only at the model boundary: ir.widen_unsigned CASTs them to int64 on entry and back on exit
    np.dtype(np.uint16): S.TensorType.UINT16, np.dtype(np.uint32): S.TensorType.UINT32,
}  # uint64 exists in the schema but no kernel takes it: refused at the model boundary


class Unsupported(Exception):
    """Raised by a lowering (or the builder) for something TFLite cannot express; becomes an UnsupportedOp entry."""

# ops whose options carry fusedActivationFunction, and the activation ops that can be folded into them
# CONCATENATION has the field but LiteRT ignores it (measured: shufflenet went wrong)
_FUSABLE = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "DIV",
            "AVERAGE_POOL_2D", "MAX_POOL_2D", "TRANSPOSE_CONV"}
# not TANH: the schema has it, but LiteRT's ADD/CONV_2D kernels ignore a fused TANH (measured: Add -> Tanh and
# Conv -> Tanh came out without the tanh) and FULLY_CONNECTED refuses to load
_ACTIVATION = {"RELU": S.ActivationFunctionType.RELU, "RELU6": S.ActivationFunctionType.RELU6,
               "RELU_N1_TO_1": S.ActivationFunctionType.RELU_N1_TO_1}


# fp16 weights: small constants (scalars, shape-like vectors) gain nothing and cost a DEQUANTIZE each;
# values beyond float16's range (e.g. the lowest-float pad value of MaxPool) must stay float32
_FP16_MIN_SIZE = 16
_FP16_MAX = float(np.finfo(np.float16).max)


@dataclass
class Quant:
    """Affine quantization of one tensor (per-tensor when `axis` is None)."""

    scale: list[float]
    zero_point: list[int]
    axis: int | None = None


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    buffer: int = 0  # 0 = no data (activation)
    quant: Quant | None = None
    signature: tuple[int, ...] | None = None  # shape_signature (-1 = batch-polymorphic axis); None: static


@dataclass
class Op:
    code: str  # BuiltinOperator name, e.g. "CONV_2D"
    inputs: list[int]  # -1 = optional input left out
    outputs: list[int]
    options: Any = None  # a schema_py_generated *OptionsT object
    version: int = 1
    node: tuple[str, str] = ("", "")  # (ONNX op type, node name) this op lowers



@dataclass
class ModelBuilder:
    fp16_weights: bool = False  # store float constants as float16 + DEQUANTIZE (TFLite's float16 scheme)
    dry: bool = False  # checking support only: keep no weight bytes (unsupported() on a 500 MB model stays cheap)
    weight_codec: Any = None  # float array -> (int8 array, Quant) | None: int8 weights + DEQUANTIZE (qdq.py)
    dynamic_range: bool = False  # int8-dynamic: FULLY_CONNECTED reads its int8 weights directly (hybrid kernel)
    share_consts: bool = True  # off for dynamic batch: both lowerings must have the same tensors one-to-one
    tensors: list[Tensor] = field(default_factory=list)
    buffers: list[bytes] = field(default_factory=lambda: [b""])  # buffer 0 is the empty sentinel
    ops: list[Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    _names: set = field(default_factory=set)
    _const_cache: dict = field(default_factory=dict)
    subgraphs: list = field(default_factory=list)  # the IF / WHILE bodies: builders whose buffers live here

    def attach(self, child: "ModelBuilder") -> int:
        """Take `child` as subgraph number n (1-based: 0 is this graph); its constant buffers move here."""
        if child.subgraphs:
            raise Unsupported("control flow nested inside a branch or loop body is not lowered")
        base = len(self.buffers) - 1
        self.buffers.extend(child.buffers[1:])
        for t in child.tensors:
            if t.buffer:
                t.buffer += base
        child.buffers = self.buffers
        self.subgraphs.append(child)
        return len(self.subgraphs)

    def _unique(self, name: str) -> str:
        base, k = name, 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def tensor(self, name: str, shape, dtype, quant: Quant | None = None) -> int:
        dtype = np.dtype(dtype)
        if dtype not in TFL_TYPE:
            raise Unsupported(f"dtype {dtype} has no TFLite tensor type")
        self.tensors.append(Tensor(self._unique(name), tuple(int(d) for d in shape), dtype, 0, quant))
        return len(self.tensors) - 1

    def const(self, array: np.ndarray, name: str, quant: Quant | None = None) -> int:
        """A constant tensor; float32 ones become float16 + DEQUANTIZE when fp16_weights is set."""
        array = np.asarray(array, order="C")  # not ascontiguousarray: it turns 0-d into 1-d
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        key = None if self.dry or not self.share_consts or array.size > 4096 else (array.dtype.str, array.shape, array.tobytes(), quant is None)
        if key is not None and key in self._const_cache:  # share identical small constants (shape vectors...)
            return self._const_cache[key]
        coded = self.weight_codec(array) if self.weight_codec and quant is None and not self.dry else None
        if coded is not None:
            idx = self.tensor(name, array.shape, np.float32)
            self.op("DEQUANTIZE", [self._raw_const(coded[0], f"{name}_int8", coded[1])], [idx], version=4)
        elif (self.fp16_weights and array.dtype == np.float32 and quant is None and array.size >= _FP16_MIN_SIZE
                and np.all(np.abs(array) <= _FP16_MAX)):
            half = self._raw_const(array.astype(np.float16), f"{name}_fp16")
            idx = self.tensor(name, array.shape, np.float32)
            self.op("DEQUANTIZE", [half], [idx], version=3)
        else:
            idx = self._raw_const(array, name, quant)
        if key is not None and quant is None:
            self._const_cache[key] = idx
        return idx

    def int8_weights(self, array: np.ndarray, name: str) -> int | None:
        """The int8 tensor of a (N, K) float weight that is exactly a dequantized int8 weight with one scale per
        output row (or one scale), for a dynamic-range FULLY_CONNECTED; None when it is not one."""
        if not self.dynamic_range or self.dry or self.weight_codec is None:
            return None
        coded = self.weight_codec(np.ascontiguousarray(array, np.float32))
        if coded is None or coded[1].axis not in (None, 0):
            return None
        return self._raw_const(coded[0], f"{name}_int8", coded[1])

    def _raw_const(self, array: np.ndarray, name: str, quant: Quant | None = None) -> int:
        idx = self.tensor(name, array.shape, array.dtype, quant)
        self.buffers.append(b"" if self.dry else array.tobytes())
        self.tensors[idx].buffer = len(self.buffers) - 1
        return idx

    def is_const(self, idx: int) -> bool:
        return self.tensors[idx].buffer != 0

    def op(self, code: str, inputs: list[int], outputs: list[int], options: Any = None, version: int = 1) -> Op:
        if not hasattr(S.BuiltinOperator, code):
            raise ValueError(f"unknown TFLite builtin {code}")
        op = Op(code, list(inputs), list(outputs), options, version)
        self.ops.append(op)
        return op

    def relax_maxpool_pads(self) -> int:
        """PADV2(lowest float) before a MAX_POOL_2D is a plain zero PAD (XNNPACK takes it) when its input is
        >= 0 (a RELU/RELU6 output or fused activation): a max over a window that always holds a real value
        >= 0 is not changed by zeros. Run after fuse_activations."""
        producer = {o: op for op in self.ops for o in op.outputs}
        users: dict[int, list[Op]] = {}
        for op in self.ops:
            for i in op.inputs:
                users.setdefault(i, []).append(op)
        relaxed = 0
        for op in self.ops:
            if op.code != "PADV2" or not all(u.code == "MAX_POOL_2D" for u in users.get(op.outputs[0], [])):
                continue
            src = producer.get(op.inputs[0])
            while src is not None and src.code in ("TRANSPOSE", "RESHAPE"):  # they move values, not change them
                src = producer.get(src.inputs[0])
            nonneg = src is not None and (src.code in ("RELU", "RELU6") or getattr(src.options, "fusedActivationFunction", None)
                                          in (S.ActivationFunctionType.RELU, S.ActivationFunctionType.RELU6))
            if nonneg:
                op.code, op.inputs, op.options = "PAD", op.inputs[:2], S.PadOptionsT()
                relaxed += 1
        return relaxed

    def fuse_activations(self) -> int:
        """Fold RELU/RELU6/RELU_N1_TO_1 into the producing op's fusedActivationFunction."""
        consumers: dict[int, int] = {}
        for op in self.ops:
            for i in op.inputs:
                consumers[i] = consumers.get(i, 0) + 1
        producer = {o: op for op in self.ops for o in op.outputs}
        keep, fused = [], 0
        for op in self.ops:
            src = producer.get(op.inputs[0]) if op.code in _ACTIVATION and op.inputs else None
            if (src is not None and src.code in _FUSABLE and consumers.get(op.inputs[0]) == 1
                    and op.inputs[0] not in self.outputs and src.options is not None
                    and getattr(src.options, "fusedActivationFunction", None) == S.ActivationFunctionType.NONE):
                src.options.fusedActivationFunction = _ACTIVATION[op.code]
                src.outputs = list(op.outputs)
                fused += 1
                continue
            keep.append(op)
        self.ops = keep
        return fused
