"""ONNX Runtime on this machine: the reference for numerics, and the runtime of .ort artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgec.errors import LoweringError


def session_options(threads: int, level: str = "all") -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # warnings about unused initializers are noise for users
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    return so


class OrtRunner:
    def __init__(self, model: Path | bytes | onnx.ModelProto, threads: int = 1, level: str = "all", name: str = "onnxruntime"):
        self.name = name
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        source = str(source) if isinstance(source, Path) else source
        try:
            self.session = ort.InferenceSession(source, session_options(threads, level), providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            raise LoweringError(f"ONNX Runtime cannot load {'the model' if not isinstance(source, str) else source}: {e}") from None
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not any(map(_packed, feeds.values())) and not any(
                o.type.startswith("tensor(") and o.type[7:-1] in _PACKED for o in self.session.get_outputs()):
            return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
        # bfloat16 / float8 / int4 / int2: numpy has no such types, ORT's numpy bridge cannot pass them
        ort_feeds = {k: _to_ortvalue(v) if _packed(v) else ort.OrtValue.ortvalue_from_numpy(v) for k, v in feeds.items()}
        values = self.session.run_with_ort_values(self.output_names, ort_feeds)
        return {n: _from_ortvalue(v) for n, v in zip(self.output_names, values)}


# ONNX element types that numpy lacks (ml_dtypes has them): ORT's type name -> TensorProto enum
_PACKED = {t.lower(): getattr(onnx.TensorProto, t) for t in (
    "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT8E8M0",
    "INT4", "UINT4", "INT2", "UINT2", "FLOAT4E2M1") if hasattr(onnx.TensorProto, t)}
_BITS = {"int4": 4, "uint4": 4, "float4e2m1": 4, "int2": 2, "uint2": 2}


_ML_NAMES = {"float8_e8m0fnu": "float8e8m0", "float4_e2m1fn": "float4e2m1"}  # ml_dtypes name -> ORT's


def _ort_type_name(dtype: np.dtype) -> str:
    return _ML_NAMES.get(dtype.name, dtype.name.replace("_", ""))


def _packed(value) -> bool:
    return isinstance(value, np.ndarray) and _ort_type_name(value.dtype) in _PACKED  # (float8_e5m2 has kind "f")


def _to_ortvalue(value: np.ndarray) -> ort.OrtValue:
    """ml_dtypes array -> OrtValue holding the same bits (sub-byte types packed low bits first, as ONNX does)."""
    name = _ort_type_name(value.dtype)
    raw = value.copy(order="C").view(  # (ascontiguousarray would make a 0-d array 1-d)
        np.uint8 if value.dtype.itemsize == 1 else np.uint16)
    if name in _BITS:
        bits = _BITS[name]
        per = 8 // bits
        flat = raw.reshape(-1) & ((1 << bits) - 1)
        flat = np.concatenate([flat, np.zeros(-flat.size % per, np.uint8)]).reshape(-1, per)
        packed = np.zeros(flat.shape[0], np.uint8)
        for i in range(per):
            packed |= (flat[:, i] << (i * bits)).astype(np.uint8)
        raw = np.zeros(value.shape, np.uint8)  # ORT takes the shape from the array and the packed bytes from its start
        raw.reshape(-1)[: packed.size] = packed
    return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(raw, _PACKED[name])


def _from_ortvalue(value: ort.OrtValue):
    kind = value.data_type()
    name = kind[7:-1] if kind.startswith("tensor(") else ""
    if name not in _PACKED:
        return value.numpy()
    import ctypes

    from onnx.helper import tensor_dtype_to_np_dtype

    dtype = tensor_dtype_to_np_dtype(_PACKED[name])
    shape = value.shape()
    raw = np.frombuffer(ctypes.string_at(value.data_ptr(), value.tensor_size_in_bytes()), np.uint8)
    if name in _BITS:
        bits = _BITS[name]
        per = 8 // bits
        count = int(np.prod(shape, dtype=np.int64))
        unpacked = np.stack([(raw >> (i * bits)) & ((1 << bits) - 1) for i in range(per)], axis=1).reshape(-1)
        unpacked = unpacked[:count]
        if name.startswith("int"):  # sign-extend into ml_dtypes' one-value-per-byte layout
            unpacked = np.where(unpacked >= 1 << (bits - 1), unpacked.astype(np.int16) - (1 << bits), unpacked)
            return unpacked.astype(np.int8).astype(dtype).reshape(shape)
        return unpacked.astype(np.uint8).astype(dtype).reshape(shape)
    return raw.view(dtype).reshape(shape).copy()
