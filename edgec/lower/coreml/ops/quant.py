"""QuantizeLinear / DequantizeLinear: the QDQ graphs edgec's quantize stage writes (int8, int8-weights).

Constant int8/uint8 weights behind a DequantizeLinear stay 8-bit in the package: constexpr_affine_dequantize
(iOS16+) with the graph's own scales and zero points, so every target shares one set of scales. Activation
Q/DQ pairs run as float arithmetic ("fake quantization": the same rounding and clipping, float compute);
CoreML picks its own kernels, so this reproduces the quantized model's numbers, not int8 speed.
"""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto

from edgec.lower.coreml.ops._util import first, need_const, need_shape, norm_axis
from edgec.lower.coreml.registry import Env, NodeView, lowers

_RANGE = {TensorProto.UINT8: (0, 255), TensorProto.INT8: (-128, 127)}
_NP = {TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8}


def _check_qdq(n: NodeView, int_type: int | None) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "scale"), need_const(n, 2, "zero_point"))
    if why:
        return why
    if n.const(1) is None:
        return f"scale (input '{n.inputs[1]}') must be a constant"
    if int(n.attr("block_size", 0)):
        return "blocked quantization (block_size) is not lowered"
    if int_type not in _RANGE:
        name = TensorProto.DataType.Name(int_type) if int_type else "unknown"
        return f"{name} quantized type: only int8 and uint8 are lowered"
    if n.const(1).ndim > 1:
        return "scale of rank > 1"
    return None


def _broadcast(n: NodeView, v: np.ndarray, rank: int) -> np.ndarray:
    """A per-axis (1-D) scale / zero point shaped to broadcast against the rank-`rank` tensor."""
    if v.ndim == 0 or rank == 0:
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


@lowers("DequantizeLinear", check=_check_dequantize)
def dequantize_linear(n: NodeView, env: Env):
    """constexpr_affine_dequantize for constant 8-bit weights, a float constant for int32 biases, else
    (float(q) - zero_point) * scale"""
    int_type = n.dtype(0)
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
    x = mb.cast(x=env.var(n, 0), dtype="fp32", name=env.tmp(n, "float"))
    if np.any(zp != 0):
        x = mb.sub(x=x, y=_broadcast(n, zp.astype(np.float32), rank), name=env.tmp(n, "centred"))
    return mb.mul(x=x, y=_broadcast(n, scale, rank), name=env.out(n))


@lowers("QuantizeLinear", check=lambda n: _check_qdq(n, n.out_dtype(0)))
def quantize_linear(n: NodeView, env: Env):
    """clip(round(x / scale) + zero_point) as float, cast to int32 (CoreML's integer type)"""
    int_type = n.out_dtype(0)
    rank = len(n.shape(0))
    scale = _broadcast(n, n.const(1).astype(np.float32), rank)
    zp = _broadcast(n, _zero_point(n, int_type).astype(np.float32), rank)
    lo, hi = _RANGE[int_type]
    y = mb.round(x=mb.real_div(x=env.var(n, 0), y=scale, name=env.tmp(n, "scaled")), name=env.tmp(n, "rounded"))
    if np.any(zp != 0):
        y = mb.add(x=y, y=zp, name=env.tmp(n, "shifted"))
    y = mb.clip(x=y, alpha=np.float32(lo), beta=np.float32(hi), name=env.tmp(n, "clipped"))
    return mb.cast(x=y, dtype="int32", name=env.out(n))
