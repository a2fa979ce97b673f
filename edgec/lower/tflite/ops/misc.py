"""Cast, CastLike, Gelu, Erf (composed: TFLite has no ERF) and LayerNormalization (composed from MEAN)."""

from __future__ import annotations

import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as S
from onnx import helper

from edgec.lower.tflite.builder import TFL_TYPE
from edgec.lower.tflite.ops._util import full_rank
from edgec.lower.tflite.registry import LowerCtx, lowers

# dtypes LiteRT's CAST kernel reads and writes
_CASTABLE = {np.dtype(t) for t in (np.float32, np.float16, np.float64, np.int32, np.int64, np.int16, np.int8,
                                     np.uint8, np.bool_, np.uint16, np.uint32)}


@lowers("Cast", "CastLike")
def cast(ctx: LowerCtx) -> None:
    """CAST (float -> int truncates toward zero, as ONNX does); same dtype is a no-op."""
    src = ctx.dtype(0)
    if ctx.node.op == "Cast":
        to = int(ctx.attr("to"))
        name = onnx.TensorProto.DataType.Name(to)
        try:
            dst = np.dtype(helper.tensor_dtype_to_np_dtype(to))
        except (KeyError, TypeError):
            ctx.unsupported(f"to={name}: TFLite CAST has no such type")
        if dst not in _CASTABLE or name in ("BFLOAT16", "STRING") or "FLOAT8" in name or name in ("INT4", "UINT4", "FLOAT4E2M1"):
            ctx.unsupported(f"to={name}: TFLite CAST has no such type")
    else:
        dst = ctx.dtype(1)
    for d in (src, dst):
        if d not in _CASTABLE:
            ctx.unsupported(f"dtype {d} is not a TFLite CAST type")
    if int(ctx.attr("saturate", 1)) != 1 and dst.itemsize == 1 and dst.kind == "f":
        ctx.unsupported("saturate=0 (float8 only)")
    if src == dst:
        return ctx.alias(0, ctx.input(0))
    opts = S.CastOptionsT()
    opts.inDataType, opts.outDataType = TFL_TYPE[src], TFL_TYPE[dst]
    ctx.emit("CAST", [ctx.input(0)], [ctx.output(0)], opts)


def _float_only(ctx: LowerCtx) -> None:
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")


@lowers("Gelu")
def gelu(ctx: LowerCtx) -> None:
    """GELU; approximate='tanh' sets the op's approximate flag."""
    _float_only(ctx)
    approx = ctx.attr("approximate", "none")
    if approx not in ("none", "tanh"):
        ctx.unsupported(f"approximate='{approx}'")
    opts = S.GeluOptionsT()
    opts.approximate = approx == "tanh"
    ctx.emit("GELU", [ctx.input(0)], [ctx.output(0)], opts)


# Abramowitz & Stegun 7.1.26: erf(x) = 1 - t(a1 + t(a2 + ... )) exp(-x^2), t = 1 / (1 + p|x|); |error| < 1.5e-7
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


@lowers("Erf")
def erf(ctx: LowerCtx) -> None:
    """Composed (TFLite has no ERF): sign(x) * (1 - poly(t) exp(-x^2)), Abramowitz-Stegun, |err| < 1.5e-7."""
    _float_only(ctx)
    shape = ctx.shape(0)
    x = ctx.input(0)

    def scalar(v: float, tag: str) -> int:
        return ctx.constant(np.array(v, np.float32).reshape((1,) * len(shape)), tag)

    def op(code: str, ins: list[int], tag: str, options=None) -> int:
        t = ctx.temp(shape, tag=tag)
        ctx.emit(code, ins, [t], options)
        return t

    ax = op("ABS", [x], "abs")
    t = op("DIV", [scalar(1.0, "one"), op("ADD", [op("MUL", [ax, scalar(_P, "p")], "px", S.MulOptionsT()),
                                                   scalar(1.0, "one")], "den", S.AddOptionsT())], "t", S.DivOptionsT())
    poly = op("MUL", [t, scalar(_A[4], "a5")], "p5", S.MulOptionsT())
    for k in (3, 2, 1, 0):
        poly = op("ADD", [poly, scalar(_A[k], f"a{k + 1}")], f"s{k}", S.AddOptionsT())
        poly = op("MUL", [poly, t], f"m{k}", S.MulOptionsT())
    e = op("EXP", [op("NEG", [op("MUL", [x, x], "x2", S.MulOptionsT())], "nx2")], "exp", S.ExpOptionsT())
    y = op("SUB", [scalar(1.0, "one"), op("MUL", [poly, e], "pe", S.MulOptionsT())], "abs_erf", S.SubOptionsT())
    ctx.emit("MUL", [y, op("SIGN", [x], "sign")], [ctx.output(0)], S.MulOptionsT())


@lowers("LayerNormalization")
def layer_norm(ctx: LowerCtx) -> None:
    """(x - mean) * rsqrt(var + eps) * scale + bias over axes [axis, rank); Mean / InvStdDev outputs too."""
    _float_only(ctx)
    shape = ctx.shape(0)
    rank = len(shape)
    axis = int(ctx.attr("axis", -1))
    axis = axis + rank if axis < 0 else axis
    eps = float(ctx.attr("epsilon", 1e-5))
    stat_shape = tuple(shape[:axis]) + (1,) * (rank - axis)
    axes = ctx.constant(np.arange(axis, rank, dtype=np.int32), "axes")
    keep = S.ReducerOptionsT()
    keep.keepDims = True
    outs = ctx.node.outputs

    def stat(j: int, tag: str) -> int:  # an optional output tensor, or a temp
        return ctx.output(j) if len(outs) > j and outs[j] else ctx.temp(stat_shape, tag=tag)

    x = ctx.input(0)
    mean = stat(1, "mean")
    ctx.emit("MEAN", [x, axes], [mean], keep)
    d = ctx.temp(shape, tag="centered")
    ctx.emit("SUB", [x, mean], [d], S.SubOptionsT())
    sq = ctx.temp(shape, tag="sq")
    ctx.emit("MUL", [d, d], [sq], S.MulOptionsT())
    var = ctx.temp(stat_shape, tag="var")
    ctx.emit("MEAN", [sq, axes], [var], keep)
    var_eps = ctx.temp(stat_shape, tag="var_eps")
    ctx.emit("ADD", [var, ctx.constant(np.full((1,) * rank, eps, np.float32), "eps")], [var_eps], S.AddOptionsT())
    inv = stat(2, "inv_std")
    ctx.emit("RSQRT", [var_eps], [inv])
    normed = ctx.temp(shape, tag="normed")
    ctx.emit("MUL", [d, inv], [normed], S.MulOptionsT())

    def param(i: int, tag: str) -> int:
        c = ctx.const(i)
        return ctx.constant(full_rank(c.astype(np.float32), rank), tag) if c is not None else ctx.input(i)

    has_bias = ctx.has_input(2)
    scaled = ctx.temp(shape, tag="scaled") if has_bias else ctx.output(0)
    ctx.emit("MUL", [normed, param(1, "scale")], [scaled], S.MulOptionsT())
    if has_bias:
        ctx.emit("ADD", [scaled, param(2, "bias")], [ctx.output(0)], S.AddOptionsT())

