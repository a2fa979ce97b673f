"""ONNX Runtime on this machine: the reference for numerics, and the runtime of .ort artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgec.errors import LoweringError


# ONNX Runtime (>= 1.20) quantizes, at load, the float weights of a Conv/Gemm that reads a DequantizeLinear output:
# per-tensor int8, whatever their spread. A node edgec keeps float inside an int8 graph (a float island, keep_float,
# the input layer) would run per-tensor int8 -- measured on EfficientNet-Lite0 with block 0's depthwise conv float:
# logits 29 % off instead of 6 %. Every session and conversion of a quantized graph leaves it out.
KEEPS_FLOAT_NODES_FLOAT = ["WeightBiasQuantization"]


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
    # exact int32 accumulation for int8 on every x86 CPU (an ARM device's arithmetic): without it, CPUs with AVX2
    # but no VNNI saturate U8S8 products in int16 (edgec.runtimes.ort_exact)
    so.add_session_config_entry("session.x64quantprecision", "1")
    return so


class OrtRunner:
    def __init__(self, model: Path | bytes | onnx.ModelProto, threads: int = 1, level: str = "all", name: str = "onnxruntime"):
        self.name = name
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        source = str(source) if isinstance(source, Path) else source
        self.kernels = "onnxruntime CPU"  # which arithmetic produced the outputs (for reports)
        source, level = self._exact_int8(source, level)
        try:
            self.session = ort.InferenceSession(source, session_options(threads, level), providers=["CPUExecutionProvider"],
                                                disabled_optimizers=KEEPS_FLOAT_NODES_FLOAT)
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            raise LoweringError(f"ONNX Runtime cannot load {'the model' if not isinstance(source, str) else source}: {e}") from None
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _exact_int8(self, source, level: str):
        """An ORT-format file with int8 kernels, on a CPU whose U8S8 kernels saturate: its own graph with the
        weights widened to uint8 (ort_exact), since a saved .ort is not transformed again at load."""
        from edgec.runtimes import ort_exact

        data = Path(source).read_bytes() if isinstance(source, str) else source
        if len(data) < 8 or data[4:8] != b"ORTM":
            if ort_exact.u8s8_saturates():
                self.kernels += " (int8 GEMMs as exact U8U8: session.x64quantprecision)"
            return source, level
        if not ort_exact.u8s8_saturates():
            return source, level
        twin, changed = ort_exact.exact_twin(ort_exact.ort_to_onnx(data))
        if not changed:
            return source, level
        self.kernels += (f" on the .ort's own graph with {changed} int8 kernel(s)' weights widened to uint8 "
                         "(this CPU's U8S8 kernels saturate; an ARM device's do not)")
        self.name += " [exact int8]"
        return twin.SerializeToString(), "disable"

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
