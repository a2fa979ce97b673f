"""Minimum operator versions: a TFLite runtime refuses an op whose version it does not know, and an op
marked older than the features it uses could be run by a kernel that ignores them. So each op gets the
lowest version that has its dtypes, ranks and options (per TFLite's op-versioning rules for these ops).
"""

from __future__ import annotations

import numpy as np

from edgec.lower.tflite.builder import ModelBuilder, Op

I8, I16, I32, I64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
U8, F16, F64, BOOL = np.dtype(np.uint8), np.dtype(np.float16), np.dtype(np.float64), np.dtype(np.bool_)


class _Sig:
    """What the rules look at: input/output dtypes and ranks (None for an omitted input), options."""

    def __init__(self, b: ModelBuilder, op: Op):
        self.op = op
        self.ins = [b.tensors[i] if i >= 0 else None for i in op.inputs]
        self.outs = [b.tensors[i] for i in op.outputs]

    def t(self, i: int = 0):
        return self.ins[i].dtype if i < len(self.ins) and self.ins[i] is not None else None

    def rank(self, i: int = 0) -> int:
        return len(self.ins[i].shape) if i < len(self.ins) and self.ins[i] is not None else 0

    def broadcast_over_4d(self) -> bool:
        shapes = [t.shape for t in self.ins[:2] if t is not None]
        return len(shapes) == 2 and shapes[0] != shapes[1] and max(len(s) for s in shapes) > 4

    def opt(self, name: str, default=0):
        return getattr(self.op.options, name, default) if self.op.options is not None else default


def _int8_16(v8: int, v16: int):
    return lambda s: v16 if s.t() == I16 else v8 if s.t() in (I8, U8) else 1


def _first(*rules):
    """The first (condition, version) that holds, else 1."""
    def rule(s: _Sig) -> int:
        for cond, version in rules:
            if cond(s):
                return version
        return 1
    return rule


_RULES = {
    # 16x8 (int16 activations, int8 weights): CONV_2D 4, DEPTHWISE_CONV_2D 5, FULLY_CONNECTED 7
    "CONV_2D": _first((lambda s: s.rank(1) == 4 and s.ins[0].shape[-1] != s.ins[1].shape[-1], 6),
                      (lambda s: s.t() == I16, 4), (lambda s: s.t() == I8, 3)),
    "DEPTHWISE_CONV_2D": _first((lambda s: s.t() == I16, 5), (lambda s: s.t() == I8, 3),
                                (lambda s: s.opt("dilationHFactor", 1) != 1 or s.opt("dilationWFactor", 1) != 1, 2)),
    # hybrid (float input, int8 weights): 9 with asymmetric input quantization, 12 with per-channel weights
    "FULLY_CONNECTED": _first((lambda s: s.t() not in (I8, I16) and s.t(1) == I8 and len(s.ins[1].quant.scale) > 1, 12),
                              (lambda s: s.t() not in (I8, I16) and s.t(1) == I8, 9), (lambda s: s.t() == I16, 7), (lambda s: len(s.ins) == 2, 6), (lambda s: s.opt("keepNumDims", False), 5),
                              (lambda s: s.t() == I8, 4)),
    "TRANSPOSE_CONV": _first((lambda s: s.opt("fusedActivationFunction"), 4),
                             (lambda s: len(s.ins) == 4 and s.ins[3] is not None, 3), (lambda s: s.t(1) == I8, 2)),
    "TRANSPOSE": _first((lambda s: s.rank() > 5, 6), (lambda s: s.t() == I16, 5), (lambda s: s.rank() > 4, 4),
                        (lambda s: s.t() == BOOL, 3), (lambda s: s.t() == I8, 2)),
    "SLICE": _first((lambda s: s.rank() > 4, 5), (lambda s: s.t() == I16, 4), (lambda s: s.t() == I8, 2)),
    "STRIDED_SLICE": _first((lambda s: s.opt("offset", False), 8),
                            (lambda s: s.opt("ellipsisMask") or s.opt("newAxisMask"), 6),
                            (lambda s: s.rank() > 4, 4), (lambda s: s.t() == BOOL, 3), (lambda s: s.t() == I8, 2)),
    "PAD": _first((lambda s: s.rank() > 4, 4), (lambda s: s.t() == I16, 3), (lambda s: s.t() == I8, 2)),
    "PADV2": _first((lambda s: s.rank() > 4, 4), (lambda s: s.t() == I16, 3), (lambda s: s.t() == I8, 2)),
    "ADD": _first((lambda s: s.t() == I64, 4), (lambda s: s.t() == I16, 3), (lambda s: s.t() == I8, 2)),
    "SUB": _first((lambda s: s.t() == I64, 4), (_Sig.broadcast_over_4d, 3), (lambda s: s.t() == I8, 2)),
    "MUL": _first((lambda s: s.t() == I64, 5), (lambda s: s.t() == I16, 4), (lambda s: s.t() == I8, 2)),
    "DIV": _first((_Sig.broadcast_over_4d, 2),),
    "MAXIMUM": _first((_Sig.broadcast_over_4d, 3), (lambda s: s.t() == I8, 2)),
    "MINIMUM": _first((_Sig.broadcast_over_4d, 3), (lambda s: s.t() == I8, 2)),
    "QUANTIZE": _first((lambda s: I16 in (s.t(), s.outs[0].dtype), 3),),
    "DEQUANTIZE": _first((lambda s: s.t() in (F16, I16), 3), (lambda s: s.t() == I8, 2)),
    "GATHER": _first((lambda s: s.t(1) == I16, 6), (lambda s: s.opt("batchDims"), 5), (lambda s: s.t() == I16, 4),
                     (lambda s: s.t() == BOOL, 3), (lambda s: s.t() == I8, 2)),
    "CAST": _first((lambda s: {s.t(), s.outs[0].dtype} & {F16, F64}, 5),
                   (lambda s: {s.t(), s.outs[0].dtype} & {np.dtype(np.uint16)}, 4),
                   (lambda s: {s.t(), s.outs[0].dtype} & {I8}, 3), (lambda s: {s.t(), s.outs[0].dtype} & {np.dtype(np.uint32)}, 2)),
    "RESIZE_BILINEAR": _first((lambda s: s.t() == I16, 4), (lambda s: s.opt("halfPixelCenters", False), 3),
                              (lambda s: s.t() == I8, 2)),
    "RESIZE_NEAREST_NEIGHBOR": _first((lambda s: s.t() == I16, 4),
                                      (lambda s: s.opt("halfPixelCenters", False) or s.opt("alignCorners", False), 3),
                                      (lambda s: s.t() == I8, 2)),
    "SPLIT": _first((lambda s: s.t(1) == I16, 4), (lambda s: s.t(1) == I32, 3), (lambda s: s.t(1) == I8, 2)),
    "SELECT": _first((lambda s: any(s.rank(i) == 5 for i in range(3)), 3), (lambda s: s.t() == I8, 2)),
    "ARG_MAX": _first((lambda s: s.t() == BOOL, 3), (lambda s: s.t() == I8, 2)),
    "ARG_MIN": _first((lambda s: s.t() == BOOL, 3), (lambda s: s.t() == I8, 2)),
    "ABS": _first((lambda s: s.t() == I32, 5), (lambda s: s.t() == I16, 4), (lambda s: s.t() in (I8, U8), 2)),
    "SIGN": _first((lambda s: s.t() == I32, 2),),
    "WHERE": _first((lambda s: s.t() != BOOL, 2),),
    "FLOOR_DIV": _first((lambda s: s.t() in (I8, I16), 3), (lambda s: s.t() == np.dtype(np.float32), 2)),
    "FLOOR_MOD": _first((lambda s: s.t() in (I8, I16), 2),),
    "EQUAL": _int8_16(2, 4),
    "LEAKY_RELU": _first((lambda s: s.t() == I16, 2),),
    **{op: _int8_16(2, 3) for op in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "CONCATENATION", "RELU", "TANH", "LOGISTIC",
                                     "SOFTMAX", "MEAN", "MIRROR_PAD", "REDUCE_MAX", "REDUCE_MIN", "RELU6", "RSQRT",
                                     "LESS", "GREATER_EQUAL", "BATCH_MATMUL")},
    **{op: _first((lambda s: s.t() in (I8, U8), 2),) for op in (
        "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "SPLIT_V", "SUM", "LOG_SOFTMAX", "GREATER", "LESS_EQUAL",
        "SQUARED_DIFFERENCE", "GELU", "EXP", "LOG", "REDUCE_PROD", "NOT_EQUAL")},
}


def set_versions(b: ModelBuilder) -> None:
    """Raise every op's version to the lowest one that has what the op uses (never lowers it)."""
    for op in b.ops:
        rule = _RULES.get(op.code)
        if rule is not None:
            op.version = max(op.version, int(rule(_Sig(b, op))))
