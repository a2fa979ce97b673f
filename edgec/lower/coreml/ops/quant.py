"""QuantizeLinear / DequantizeLinear: the QDQ graphs edgec's quantize stage writes (int8, int8-weights).

Constant int8/uint8 weights behind a DequantizeLinear stay 8-bit in the package: constexpr_affine_dequantize
(iOS16+) with the graph's own scales and zero points, so every target shares one set of scales. Activation
Q/DQ pairs become MIL quantize / dequantize (iOS17+: the pattern CoreML's compiler can run as int8), or on
older targets float arithmetic with the same rounding and clipping ("fake quantization": right numbers, float speed).
"""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types
from onnx import TensorProto

from edgec.lower.coreml.ops._util import first, need_const, need_shape, norm_axis
from edgec.lower.coreml.registry import Env, NodeView, lowers

_RANGE = {TensorProto.UINT8: (0, 255), TensorProto.INT8: (-128, 127)}
_NP = {TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8}


# types lowered as plain float arithmetic (no MIL quantize op, no 8-bit constexpr): 16-bit ints, and for
# DequantizeLinear the types CoreML reads exactly as int32 / fp32 (int4, int2, float8, float4)
_GENERAL_RANGE = {TensorProto.INT16: (-32768, 32767), TensorProto.UINT16: (0, 65535)}
_READ_ONLY_Q = (TensorProto.INT4, TensorProto.UINT4, TensorProto.INT2, TensorProto.UINT2, TensorProto.FLOAT8E4M3FN,
                TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E5M2FNUZ, TensorProto.FLOAT4E2M1)


def _general(n: NodeView, int_type: int | None) -> bool:
    return bool(int(n.attr("block_size", 0))) or int_type in _GENERAL_RANGE or (
        n.op == "DequantizeLinear" and int_type in _READ_ONLY_Q)


def _check_qdq(n: NodeView, int_type: int | None) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "scale"), need_const(n, 2, "zero_point"))
    if why:
        return why
    if n.const(1) is None:
        return f"scale (input '{n.inputs[1]}') must be a constant"
    if _general(n, int_type):
        if n.op == "QuantizeLinear" and int_type not in _RANGE and int_type not in _GENERAL_RANGE:
            name = TensorProto.DataType.Name(int_type) if int_type else "unknown"
            return f"{name} output: CoreML cannot hold it (int8, uint8, int16, uint16 are lowered)"
        try:
            _expand(n, n.const(1), n.shape(0))
        except ValueError as e:
            return f"scale does not fit the input (block_size={int(n.attr('block_size', 0))}): {e}"
        return None
    if int(n.attr("block_size", 0)):
        return "blocked quantization (block_size) is not lowered"
    if int_type not in _RANGE:
        name = TensorProto.DataType.Name(int_type) if int_type else "unknown"
        return f"{name} quantized type: CoreML holds int8, uint8, int16 and uint16 results (int4, int2, float8 are read only)"
    if n.const(1).ndim > 1:
        return "scale of rank > 1"
    return None


def _broadcast(n: NodeView, v: np.ndarray, rank: int) -> np.ndarray:
    """A per-axis (1-D) scale / zero point shaped to broadcast against the rank-`rank` tensor."""
    if v.ndim == 0 or rank == 0 or v.size == 1:  # a [1] scale (ORT's ConvTranspose bias) is per-tensor
        return v.reshape(())
    shape = [1] * rank
    shape[norm_axis(int(n.attr("axis", 1)), rank)] = v.size
    return v.reshape(shape)


def _zero_point(n: NodeView, int_type: int) -> np.ndarray:
    zp = n.const(2) if n.has(2) else np.zeros((), _NP[int_type])
    return zp.astype(_NP[int_type])


def _check_dequantize(n: NodeView) -> str | None:
    if n.dtype(0) == TensorProto.INT32 and n.const(0) is not None:  # a QDQ bias: folded to float
        return first(need_const(n, 1, "scale"), need_const(n, 2, "zero_point"))
    return _check_qdq(n, n.dtype(0))


def _expand(n: NodeView, v: np.ndarray, shape: list[int]) -> np.ndarray:
    """A scale / zero point shaped to broadcast against the input: scalar, per axis (1-D), or per block (the input's
    rank, each entry repeated block_size times along the axis)."""
    rank = len(shape)
    block = int(n.attr("block_size", 0))
    if v.size == 1 and not block:
        return v.reshape(())
    if block:
        if v.ndim != rank:
            raise ValueError(f"blocked scale of rank {v.ndim} for a rank-{rank} input")
        axis = norm_axis(int(n.attr("axis", 1)), rank)
        full = np.repeat(v, block, axis=axis)
        return np.take(full, np.arange(shape[axis]), axis=axis)
    if v.ndim != 1:
        raise ValueError(f"scale of rank {v.ndim} without block_size")
    out = [1] * rank
    out[norm_axis(int(n.attr("axis", 1)), rank)] = v.size
    return v.reshape(out)


def _general_zp(n: NodeView) -> np.ndarray:
    zp = n.const(2) if n.has(2) else None
    return np.zeros((), np.float32) if zp is None else _expand(n, zp, n.shape(0)).astype(np.float32)


def _dequantize_general(n: NodeView, env: Env):
    """(float(q) - zero_point) * scale in float32 (16-bit, 4-bit, 2-bit, float8 and blocked quantization)"""
    shape = n.shape(0)
    scale = _expand(n, n.const(1), shape).astype(np.float32)
    zp = _general_zp(n)
    half = n.dtype(1) == TensorProto.FLOAT16
    x = env.var(n, 0)
    if types.builtin_to_string(x.dtype) != "fp32":
        x = mb.cast(x=x, dtype="fp32", name=env.tmp(n, "float"))
    if np.any(zp != 0):
        x = mb.sub(x=x, y=zp, name=env.tmp(n, "centred"))
    y = mb.mul(x=x, y=scale, name=env.tmp(n, "scaled") if half else env.out(n))
    return mb.cast(x=y, dtype="fp16", name=env.out(n)) if half else y


def _quantize_general(n: NodeView, env: Env, int_type: int):
    """clip(round(x / scale) + zero_point) in float32, cast to int32 (16-bit and blocked quantization)"""
    shape = n.shape(0)
    scale = _expand(n, n.const(1), shape).astype(np.float32)
    zp = _general_zp(n)
    lo, hi = _RANGE.get(int_type) or _GENERAL_RANGE[int_type]
    x = env.var(n, 0)
    if types.builtin_to_string(x.dtype) != "fp32":
        x = mb.cast(x=x, dtype="fp32", name=env.tmp(n, "float"))
    y = mb.round(x=mb.real_div(x=x, y=scale, name=env.tmp(n, "scaled")), name=env.tmp(n, "rounded"))
    if np.any(zp != 0):
        y = mb.add(x=y, y=zp, name=env.tmp(n, "shifted"))
    y = mb.clip(x=y, alpha=np.float32(lo), beta=np.float32(hi), name=env.tmp(n, "clipped"))
    return mb.cast(x=y, dtype="int32", name=env.out(n))


@lowers("DequantizeLinear", check=_check_dequantize)
def dequantize_linear(n: NodeView, env: Env):
    """constexpr_affine_dequantize for constant 8-bit weights, a float constant for int32 biases, else
    (float(q) - zero_point) * scale"""
    int_type = n.dtype(0)
    if _general(n, int_type):
        return _dequantize_general(n, env)
    scale = n.const(1).astype(np.float32)
    if int_type == TensorProto.INT32:  # CoreML has no int32 weight compression; the bias is small anyway
        q = n.const(0).astype(np.float64)
        zp = n.const(2).astype(np.float64) if n.has(2) else 0.0
        return ((q - _broadcast(n, np.asarray(zp), q.ndim)) * _broadcast(n, scale, q.ndim)).astype(np.float32)
    zp = _zero_point(n, int_type)
    q = n.const(0)
    if q is not None and q.ndim > 0:
        axis = norm_axis(int(n.attr("axis", 1)), q.ndim) if scale.ndim == 1 else 0
        return mb.constexpr_affine_dequantize(quantized_data=q.astype(_NP[int_type]), zero_point=zp, scale=scale,
                                              axis=np.int32(axis), name=env.out(n))
    rank = len(n.shape(0))
    x = env.var(n, 0)
    if types.builtin_to_string(x.dtype) in ("uint8", "int8"):  # from a MIL quantize (iOS17+)
        axis = {"axis": np.int32(norm_axis(int(n.attr("axis", 1)), rank))} if scale.ndim == 1 else {}
        return mb.dequantize(input=x, scale=scale, zero_point=zp, name=env.out(n), **axis)
    x = mb.cast(x=x, dtype="fp32", name=env.tmp(n, "float"))
    if np.any(zp != 0):
        x = mb.sub(x=x, y=_broadcast(n, zp.astype(np.float32), rank), name=env.tmp(n, "centred"))
    return mb.mul(x=x, y=_broadcast(n, scale, rank), name=env.out(n))


def _native(n: NodeView, env: Env) -> bool:
    """MIL quantize for this QuantizeLinear: iOS17+, and only DequantizeLinear reads the 8-bit tensor
    (CoreML features and other ops have no uint8/int8 tensors)."""
    from coremltools import target

    out = n.outputs[0]
    readers = env.graph.consumers.get(out, [])
    return (env.opset is not None and env.opset >= target.iOS17 and out not in env.graph.graph_outputs
            and bool(readers) and all(r == "DequantizeLinear" for r in readers))


@lowers("QuantizeLinear", check=lambda n: _check_qdq(n, n.out_dtype(0)))
def quantize_linear(n: NodeView, env: Env):
    """quantize (iOS17+, read only by DequantizeLinear), else clip(round(x / scale) + zero_point) in float
    cast to int32 (CoreML's integer type)"""
    int_type = n.out_dtype(0)
    if _general(n, int_type):
        return _quantize_general(n, env, int_type)
    rank = len(n.shape(0))
    if _native(n, env):
        scale = n.const(1).astype(np.float32)
        axis = {"axis": np.int32(norm_axis(int(n.attr("axis", 1)), rank))} if scale.ndim == 1 else {}
        return mb.quantize(input=env.var(n, 0), scale=scale, zero_point=_zero_point(n, int_type),
                           output_dtype="uint8" if int_type == TensorProto.UINT8 else "int8", name=env.out(n), **axis)
    scale = _broadcast(n, n.const(1).astype(np.float32), rank)
    zp = _broadcast(n, _zero_point(n, int_type).astype(np.float32), rank)
    lo, hi = _RANGE[int_type]
    y = mb.round(x=mb.real_div(x=env.var(n, 0), y=scale, name=env.tmp(n, "scaled")), name=env.tmp(n, "rounded"))
    if np.any(zp != 0):
        y = mb.add(x=y, y=zp, name=env.tmp(n, "shifted"))
    y = mb.clip(x=y, alpha=np.float32(lo), beta=np.float32(hi), name=env.tmp(n, "clipped"))
    return mb.cast(x=y, dtype="int32", name=env.out(n))
