"""Compression (constexpr_*) and activation quantization ops (iOS16 constexpr_ops.py, iOS17
quantization_ops.py, iOS18 compression.py). constexpr ops are evaluated once, at load time."""

from __future__ import annotations

import numpy as np

from . import mil_op
from ._util import ints


def _along_axis(v, data: np.ndarray, axis) -> np.ndarray:
    """A scalar, a vector along `axis`, or an already rank-matched tensor, broadcastable to data."""
    v = np.asarray(v)
    if v.ndim == 0 or v.ndim == data.ndim:
        return v
    shape = [1] * data.ndim
    shape[int(axis) % data.ndim] = -1
    return v.reshape(shape)


def _dequant(data, scale, zero_point, axis):
    data = np.asarray(data)
    scale = np.asarray(scale)
    # widen before subtracting so int8/uint8 arithmetic cannot wrap
    y = data.astype(np.float32)
    if zero_point is not None:
        y = y - _along_axis(zero_point, data, axis).astype(np.float32)
    return (y * _along_axis(scale, data, axis).astype(np.float32)).astype(scale.dtype)


@mil_op("constexpr_affine_dequantize")
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    return _dequant(quantized_data, scale, zero_point, axis)


@mil_op("dequantize")
def dequantize(input, scale, zero_point=None, axis=None):
    return _dequant(input, scale, zero_point, 0 if axis is None else axis)


@mil_op("quantize")
def quantize(input, scale, output_dtype, zero_point=None, axis=None):
    x = np.asarray(input)
    axis = 0 if axis is None else axis
    q = np.round(x.astype(np.float32) / _along_axis(scale, x, axis).astype(np.float32))  # half to even
    if zero_point is not None:
        q = q + _along_axis(zero_point, x, axis).astype(np.float32)
    info = np.iinfo(np.dtype(str(output_dtype)))
    return np.clip(q, info.min, info.max)


@mil_op("constexpr_cast")
def constexpr_cast(source_val, output_dtype):
    return np.asarray(source_val)  # the declared output dtype does the cast


def unpack_bits(packed, nbits: int, count: int) -> np.ndarray:
    """Indices packed LSB-first across bytes (iOS16 constexpr_lut_to_dense)."""
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), bitorder="little")[: nbits * count]
    weights = (1 << np.arange(nbits)).astype(np.int64)
    return bits.reshape(count, nbits).astype(np.int64) @ weights


@mil_op("constexpr_lut_to_dense")
def constexpr_lut_to_dense(lut, indices, shape=None, vector_axis=None):
    lut, indices = np.asarray(lut), np.asarray(indices)
    if shape is not None:  # iOS16: flat lut, packed indices, explicit shape
        shape = ints(shape)
        nbits = int(np.log2(lut.size))
        return lut[unpack_bits(indices, nbits, int(np.prod(shape)))].reshape(shape)
    # iOS18: lut [*groups, palettes, vector]; each indices dim is split into lut.shape[i] blocks
    rank = indices.ndim
    groups = [np.arange(d) // (d // g) for d, g in zip(indices.shape, lut.shape[:rank])]
    grid = np.ix_(*groups)
    out = lut[grid + (indices.astype(np.int64),)]  # indices.shape + [vector]
    vsize = lut.shape[-1]
    if vsize == 1:
        return out[..., 0]
    axis = int(vector_axis) % rank
    out = np.moveaxis(out, -1, axis + 1)  # vector elements fill consecutive positions on vector_axis
    shape = list(indices.shape)
    shape[axis] *= vsize
    return out.reshape(shape)


@mil_op("constexpr_sparse_to_dense")
def constexpr_sparse_to_dense(nonzero_data, mask, shape=None):
    data = np.asarray(nonzero_data)
    if shape is not None:  # iOS16: packed bit mask + shape
        shape = ints(shape)
        bits = np.unpackbits(np.asarray(mask, dtype=np.uint8), bitorder="little")[: int(np.prod(shape))]
        out = np.zeros(bits.size, dtype=data.dtype)
        out[bits != 0] = data
        return out.reshape(shape)
    mask = np.asarray(mask)  # iOS18: uint1 mask with the output's shape
    out = np.zeros(mask.shape, dtype=data.dtype)
    out[mask != 0] = data
    return out


@mil_op("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(data, scale, offset=None):
    data, scale = np.asarray(data), np.asarray(scale)

    def blow_up(v):  # repeat each block's parameter over the block
        for axis, (d, s) in enumerate(zip(data.shape, v.shape)):
            if d != s:
                v = np.repeat(v, d // s, axis=axis)
        return v

    y = data.astype(np.float32)
    if offset is not None:
        y = y - blow_up(np.asarray(offset)).astype(np.float32)
    return (y * blow_up(scale).astype(np.float32)).astype(scale.dtype)
