"""int8 lowerings of folded QDQ groups (see lower/tflite/qdq.py) and of the QuantizeLinear /
DequantizeLinear nodes left at float boundaries."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.builder import Quant
from edgec.lower.tflite.ops._util import int_list, lift_1d, padding_for, spatial_pads
from edgec.lower.tflite.ops.pool import _window, max_pool_2d
from edgec.lower.tflite.ops.quant_math import (dequantize_math, dynamic_quantize, matmul_integer,
                                                qlinear_matmul, quantize_math)
from edgec.lower.tflite.registry import LowerCtx, lowers


@lowers("QuantizeLinear")
def quantize(ctx: LowerCtx) -> None:
    """QUANTIZE float -> int8 (per-tensor; a uint8 zero point shifted by -128); others in float arithmetic."""
    if ctx.node.outputs[0] not in ctx.g.quant:
        return quantize_math(ctx)
    ctx.emit("QUANTIZE", [ctx.input(0)], [ctx.output(0)])


@lowers("DequantizeLinear")
def dequantize(ctx: LowerCtx) -> None:
    """DEQUANTIZE int8 -> float (activations; constant weights are folded before lowering); others in float
    arithmetic."""
    if ctx.node.inputs[0] not in ctx.g.quant:
        return dequantize_math(ctx)
    ctx.emit("DEQUANTIZE", [ctx.input(0)], [ctx.output(0)], version=2)


def _in_quant(ctx: LowerCtx, x: int) -> Quant:
    q = ctx.b.tensors[x].quant
    if q is None:
        ctx.unsupported("int8 input without quantization parameters")
    return q


def _wide(ctx: LowerCtx, x: int) -> bool:
    """Whether tensor `x` is int16 (16x8: quantize.activations int16), whose kernels take int64 biases."""
    return ctx.b.tensors[x].dtype == np.dtype(np.int16)


def _pad_int8(ctx: LowerCtx, x: int, shape, begin, end, value: int | None = None) -> int:
    """PAD of an int8 (or int16) NHWC tensor; TFLite pads with the zero point (a real 0.0), PADV2 with `value`."""
    q = _in_quant(ctx, x)
    dtype = ctx.b.tensors[x].dtype
    if value is not None and value == q.zero_point[0]:
        value = None  # PAD fills with the zero point already (XNNPACK takes PAD, not PADV2)
    n, h, w, c = shape
    paddings = np.array([[0, 0], [begin[0], end[0]], [begin[1], end[1]], [0, 0]], dtype=np.int32)
    out = ctx.b.tensor(f"{ctx.node.name}/padded", (n, h + begin[0] + end[0], w + begin[1] + end[1], c), dtype, q)
    if value is None:
        ctx.emit("PAD", [x, ctx.constant(paddings, "paddings")], [out], S.PadOptionsT())
    else:
        pad_value = ctx.b.const(np.array([value], dtype), f"{ctx.node.name}/pad_value", q)
        ctx.emit("PADV2", [x, ctx.constant(paddings, "paddings"), pad_value], [out], S.PadV2OptionsT())
    return out


# checks of the "int8.<op>" rules: why a QDQ group stays float (the int8 kernel covers only part of the ONNX op)


def _rank(ctx: LowerCtx, i: int = 0) -> int:
    return len(ctx.g.shapes.get(ctx.node.inputs[i], ()))


def _window_4d(ctx: LowerCtx) -> str | None:
    if _rank(ctx) != 4:  # 1-D windows run through RESHAPEs (ops/_util.lift_1d) that carry no quantization
        return "1-D window: the RESHAPEs around it carry no quantization"
    return None


def _avg_pool_foldable(ctx: LowerCtx) -> str | None:
    if _rank(ctx) != 4:
        return _window_4d(ctx)
    # TFLite int8 AVERAGE_POOL_2D: no explicit pads (its SAME excludes them)
    if any(ctx.attr("pads", [])) or ctx.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or ctx.attr("ceil_mode", 0):
        return "pads or ceil_mode: TFLite's int8 AVERAGE_POOL_2D takes neither"
    return None


def _gemm_foldable(ctx: LowerCtx) -> str | None:
    n = ctx.node
    if (float(ctx.attr("alpha", 1.0)) != 1.0 or float(ctx.attr("beta", 1.0)) != 1.0 or ctx.attr("transA", 0)
            or not (len(n.inputs) < 3 or not n.inputs[2] or ctx.g.qconst[n.inputs[2]][0].ndim == 1)):
        return "alpha, beta, transA or a 2-D C"
    return None


def _matmul_foldable(ctx: LowerCtx) -> str | None:
    return None if ctx.g.qconst[ctx.node.inputs[1]][0].ndim == 2 else "the constant right side is not 2-D"


def _softmax_foldable(ctx: LowerCtx) -> str | None:
    rank = _rank(ctx)  # TFLite's int8 SOFTMAX runs over the last axis only
    if int(ctx.attr("axis", -1)) % max(rank, 1) == rank - 1 and ctx.opset >= 13:
        return None
    return "not over the last axis"


def _reduce_mean_foldable(ctx: LowerCtx) -> str | None:
    return None if len(ctx.node.inputs) == 1 or ctx.node.inputs[1] in ctx.g.consts else "axes not constant"


def _same_rank(ctx: LowerCtx) -> str | None:  # TFLite broadcasts inputs of the same rank
    return None if len({len(ctx.g.shapes.get(i, ())) for i in ctx.node.inputs}) == 1 else "inputs of different rank"


def _qconst(ctx: LowerCtx, i: int):
    entry = ctx.g.qconst.get(ctx.node.inputs[i])
    if entry is None:
        ctx.unsupported(f"input {i} is not a quantized constant")
    return entry


@lowers("int8.Conv", check=_window_4d, int16=True)
@lift_1d
def conv_int8(ctx: LowerCtx) -> None:
    """CONV_2D / DEPTHWISE_CONV_2D int8: per-channel int8 weights, int32 bias (scale = in_scale * w_scale[c]);
    16x8 (int16 activations): int64 bias."""
    if not ctx.nhwc:
        ctx.unsupported("only 1-D and 2-D convolution (3-D or 4-D input) is supported")
    shape = ctx.shape(0)
    n, h, wd, c = shape
    wq, wscale, wzp, waxis = _qconst(ctx, 1)
    if wq.dtype != np.int8 or np.any(wzp != 0):
        ctx.unsupported("weights must be symmetric int8 (zero point 0): TFLite's int8 kernels require it")
    if wscale.size > 1 and waxis % wq.ndim != 0:
        ctx.unsupported(f"per-channel weight axis {waxis}: only the output-channel axis (0) maps to TFLite")
    wq = wq.reshape(wq.shape[:2] + (1,) * (4 - wq.ndim) + wq.shape[2:]) if wq.ndim == 3 else wq  # lift_1d
    o = wq.shape[0]
    x = ctx.input(0)
    in_scale = _in_quant(ctx, x).scale[0]
    wscale = np.broadcast_to(wscale, (o,)).astype(np.float32)
    bias_scale = (in_scale * wscale.astype(np.float64)).astype(np.float32)
    bq = _bias(ctx, 2, x, bias_scale, o)
    kernel = list(wq.shape[2:])
    group = int(ctx.attr("group", 1))
    strides = int_list(ctx.attr("strides", [1, 1]))
    dil = int_list(ctx.attr("dilations", [1, 1]))
    begin, end = spatial_pads(ctx, (h, wd), kernel, strides, dil)
    out_hw = ctx.out_shape(0)[1:3]
    x, padding = padding_for(ctx, x, shape, kernel, strides, dil, begin, end, out_hw,
                             pad=lambda t: _pad_int8(ctx, t, shape, begin, end))
    bias = ctx.b.const(bq.reshape(o), f"{ctx.node.name}/bias",
                       Quant([float(s) for s in bias_scale], [0] * o, 0))
    y = ctx.output(0)
    if group == 1 or group != c or wq.shape[1] != 1:
        if group != 1 and (c % group or o % group):
            ctx.unsupported(f"group={group} does not divide the channels")
        filt = ctx.b.const(np.ascontiguousarray(wq.transpose(0, 2, 3, 1)), f"{ctx.node.name}/filter",
                           Quant([float(s) for s in wscale], [0] * o, 0))  # OHWI, per output channel
        opts = S.Conv2DOptionsT()
        opts.padding, opts.strideH, opts.strideW = padding, strides[0], strides[1]
        opts.dilationHFactor, opts.dilationWFactor = dil[0], dil[1]
        ctx.emit("CONV_2D", [x, filt, bias], [y], opts, version=6 if group > 1 else 3)
        return
    # depthwise: filter 1,H,W,C*M; TFLite quantizes it along its last axis (3)
    filt = ctx.b.const(np.ascontiguousarray(wq[:, 0].transpose(1, 2, 0)[None]), f"{ctx.node.name}/filter",
                       Quant([float(s) for s in wscale], [0] * o, 3))
    opts = S.DepthwiseConv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = padding, strides[0], strides[1]
    opts.dilationHFactor, opts.dilationWFactor = dil[0], dil[1]
    opts.depthMultiplier = o // c
    ctx.emit("DEPTHWISE_CONV_2D", [x, filt, bias], [y], opts, version=3)


@lowers("int8.MaxPool", check=_window_4d, same_scale=True, int16=True)
@lift_1d
def max_pool_int8(ctx: LowerCtx) -> None:
    """MAX_POOL_2D int8 / int16 (input and output share one scale); explicit pads: PADV2 with the type's lowest."""
    max_pool_2d(ctx, lambda x, shape, begin, ends: _pad_int8(
        ctx, x, shape, begin, ends, value=int(np.iinfo(ctx.b.tensors[x].dtype).min)))


@lowers("int8.Concat", int16=True)
def concat_int8(ctx: LowerCtx) -> None:
    """CONCATENATION int8 / int16; inputs whose scale/zero point differ from the output's are requantized first
    (QUANTIZE int8 -> int8): XNNPACK takes only equal parameters."""
    rank = len(ctx.out_shape(0))
    axis = int(ctx.attr("axis"))
    y = ctx.output(0)
    qy = ctx.b.tensors[y].quant
    inputs = []
    for i, name in enumerate(ctx.node.inputs):
        if not name or np.prod(ctx.shape(i)) == 0:
            continue
        x = ctx.input(i)
        if _in_quant(ctx, x) != qy:
            r = ctx.b.tensor(f"{ctx.node.name}/requant{i}", ctx.shape(i), ctx.b.tensors[x].dtype, qy)
            ctx.emit("QUANTIZE", [x], [r])
            x = r
        inputs.append(x)
    opts = S.ConcatenationOptionsT()
    opts.axis = axis + rank if axis < 0 else axis
    ctx.emit("CONCATENATION", inputs, [y], opts)


def _binary_int8(code: str, options):
    def lower(ctx: LowerCtx) -> None:
        opts = options()
        if hasattr(opts, "potScaleInt16"):  # int16: any scales (the default asks for powers of two)
            opts.potScaleInt16 = False
        ctx.emit(code, [ctx.input(0), ctx.input(1)], [ctx.output(0)], opts)
    lower.__doc__ = f"{code} int8 / int16 (inputs and output each with their own scale)"
    return lower


lowers("int8.Add", check=_same_rank, int16=True)(_binary_int8("ADD", S.AddOptionsT))
lowers("int8.Mul", check=_same_rank, int16=True)(_binary_int8("MUL", S.MulOptionsT))


@lowers("int8.Relu", int16=True)
def relu_int8(ctx: LowerCtx) -> None:
    """RELU int8 (usually fused into the producer afterwards)."""
    ctx.emit("RELU", [ctx.input(0)], [ctx.output(0)])


@lowers("int8.AveragePool", check=_avg_pool_foldable, int16=True)
@lift_1d
def average_pool_int8(ctx: LowerCtx) -> None:
    """AVERAGE_POOL_2D int8 without pads; it keeps the input's scale, so a QUANTIZE rescales to the output's."""
    shape, kernel, strides, begin, _, ends, in_hw, out_hw = _window(ctx)
    if any(begin) or any(ends):
        ctx.unsupported("padded int8 average pooling")
    x = ctx.input(0)
    if list(kernel) == list(in_hw) and list(out_hw) == [1, 1]:  # a global pool: MEAN (XNNPACK takes int8 MEAN)
        opts = S.ReducerOptionsT()
        opts.keepDims = True
        return ctx.emit("MEAN", [x, ctx.constant(np.array([1, 2], np.int32), "axes")], [ctx.output(0)], opts)
    qx, y = _in_quant(ctx, x), ctx.output(0)
    out = y if ctx.b.tensors[y].quant == qx else ctx.b.tensor(f"{ctx.node.name}/pooled", ctx.out_shape(0),
                                                               ctx.b.tensors[x].dtype, qx)
    opts = S.Pool2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = S.Padding.VALID, strides[0], strides[1]
    opts.filterHeight, opts.filterWidth = kernel[0], kernel[1]
    ctx.emit("AVERAGE_POOL_2D", [x], [out], opts)
    if out != y:
        ctx.emit("QUANTIZE", [out], [y])


def _bias(ctx: LowerCtx, i: int, x: int, bias_scale: np.ndarray, n: int) -> np.ndarray:
    """Input i (a bias) as integers at `bias_scale` (zeros when absent), int32 for an int8 input tensor `x` and
    int64 for an int16 one (16x8): ONNX Runtime's int32 bias as it is when it already has that scale and type,
    else the float bias requantized."""
    dtype = np.int64 if _wide(ctx, x) else np.int32
    if not ctx.has_input(i):
        return np.zeros(n, dtype)
    bq, bscale, bzp, _ = _qconst(ctx, i)
    if bq.dtype != dtype or np.any(bzp != 0) or not np.allclose(bscale, bias_scale, rtol=1e-5):
        bq = np.round(ctx.const(i).astype(np.float64).reshape(-1) / bias_scale)
    return np.broadcast_to(bq.reshape(-1), (n,)).astype(dtype)


def _fc_int8(ctx: LowerCtx, wq: np.ndarray, wscale: np.ndarray, keep_dims: bool) -> None:
    """FULLY_CONNECTED int8, weights (N, K) per output channel, int32 bias at in_scale * w_scale (16x8: int64)."""
    x = ctx.input(0)
    n = wq.shape[0]
    wscale = np.broadcast_to(wscale, (n,)).astype(np.float32)
    bias_scale = (_in_quant(ctx, x).scale[0] * wscale.astype(np.float64)).astype(np.float32)
    b = -1
    if ctx.has_input(2):
        b = ctx.b.const(_bias(ctx, 2, x, bias_scale, n), f"{ctx.node.name}/bias",
                        Quant([float(s) for s in bias_scale], [0] * n, 0))
    w = ctx.b.const(np.ascontiguousarray(wq), f"{ctx.node.name}/weights", Quant([float(s) for s in wscale], [0] * n, 0))
    opts = S.FullyConnectedOptionsT()
    opts.keepNumDims = keep_dims
    ctx.emit("FULLY_CONNECTED", [x, w, b], [ctx.output(0)], opts)


def _weights_nk(ctx: LowerCtx, transposed: bool):
    """ONNX weights and their scales as TFLite's (N, K) with a per-N scale."""
    wq, wscale, wzp, waxis = _qconst(ctx, 1)
    if wq.dtype != np.int8 or np.any(wzp != 0):
        ctx.unsupported("weights must be symmetric int8 (zero point 0): TFLite's int8 kernels require it")
    n_axis = 0 if transposed else 1  # the axis of wq that holds N
    if wscale.size > 1 and waxis % 2 != n_axis:
        ctx.unsupported(f"per-channel weight axis {waxis} is not the output-feature axis")
    return (wq if transposed else wq.T), wscale


@lowers("int8.Gemm", check=_gemm_foldable, int16=True)
def gemm_int8(ctx: LowerCtx) -> None:
    """FULLY_CONNECTED int8 (alpha = beta = 1, no transA, 1-D C)."""
    wq, wscale = _weights_nk(ctx, bool(ctx.attr("transB", 0)))
    _fc_int8(ctx, wq, wscale, keep_dims=False)


@lowers("int8.MatMul", check=_matmul_foldable, int16=True)
def matmul_int8(ctx: LowerCtx) -> None:
    """FULLY_CONNECTED int8 (keep dims) for a constant 2-D right side."""
    wq, wscale = _weights_nk(ctx, False)
    _fc_int8(ctx, wq, wscale, keep_dims=len(ctx.shape(0)) > 2)


def _fixed_output(ctx: LowerCtx, code: str, scale: float, zero: int, options=None) -> None:
    """Kernels whose int8 output params TFLite fixes (SOFTMAX, LOGISTIC: 1/256, -128): run at those, then
    QUANTIZE to the QDQ model's output params when they differ."""
    y = ctx.output(0)
    fixed = Quant([scale], [zero])
    qy = ctx.b.tensors[y].quant
    same = qy is not None and abs(qy.scale[0] - scale) <= 1e-9 and qy.zero_point == [zero]
    out = y if same else ctx.b.tensor(f"{ctx.node.name}/fixed", ctx.out_shape(0), np.int8, fixed)
    ctx.emit(code, [ctx.input(0)], [out], options)
    if out != y:
        ctx.emit("QUANTIZE", [out], [y])


UNIT_INTERVAL = (1 / 256, -128)  # the output params TFLite fixes for int8 SOFTMAX and LOGISTIC


@lowers("int8.Softmax", check=_softmax_foldable, fixed_output=UNIT_INTERVAL)
def softmax_int8(ctx: LowerCtx) -> None:
    """SOFTMAX int8 over the last axis (output 1/256, -128, requantized to the QDQ model's params)."""
    rank = len(ctx.shape(0))
    if int(ctx.attr("axis", -1)) % rank != rank - 1:
        ctx.unsupported(f"int8 softmax over axis {ctx.attr('axis')} (TFLite: last axis only)")
    opts = S.SoftmaxOptionsT()
    opts.beta = 1.0
    _fixed_output(ctx, "SOFTMAX", *UNIT_INTERVAL, opts)


@lowers("int8.Sigmoid", fixed_output=UNIT_INTERVAL)
def sigmoid_int8(ctx: LowerCtx) -> None:
    """LOGISTIC int8 (output 1/256, -128, requantized to the QDQ model's params)."""
    _fixed_output(ctx, "LOGISTIC", *UNIT_INTERVAL)


@lowers("int8.ReduceMean", check=_reduce_mean_foldable, int16=True)
def reduce_mean_int8(ctx: LowerCtx) -> None:
    """MEAN int8 (own input/output scales) over constant axes."""
    rank = len(ctx.shape(0))
    axes = ctx.attr("axes") if not ctx.has_input(1) else ctx.const(1)
    axes = list(range(rank)) if axes is None or len(axes) == 0 else sorted(int(a) % rank for a in np.ravel(axes))
    opts = S.ReducerOptionsT()
    opts.keepDims = bool(ctx.attr("keepdims", 1))
    ctx.emit("MEAN", [ctx.input(0), ctx.constant(np.array(axes, np.int32), "axes")], [ctx.output(0)], opts)


@lowers("int8.LeakyRelu", int16=True)
def leaky_relu_int8(ctx: LowerCtx) -> None:
    """LEAKY_RELU int8 (own input/output scales)."""
    opts = S.LeakyReluOptionsT()
    opts.alpha = float(ctx.attr("alpha", 0.01))
    ctx.emit("LEAKY_RELU", [ctx.input(0)], [ctx.output(0)], opts)


@lowers("int8.HardSwish")
def hard_swish_int8(ctx: LowerCtx) -> None:
    """HARD_SWISH int8 (own input/output scales)."""
    ctx.emit("HARD_SWISH", [ctx.input(0)], [ctx.output(0)])


def _hard_sigmoid_foldable(ctx: LowerCtx) -> str | None:
    return None if float(ctx.attr("alpha", 0.2)) > 0 else "alpha <= 0: no int8 scale carries alpha * x"


@lowers("int8.HardSigmoid", check=_hard_sigmoid_foldable)
def hard_sigmoid_int8(ctx: LowerCtx) -> None:
    """clip(a*x + b, 0, 1) on int8 (TFLite has no HARD_SIGMOID): MUL by the constant a written at scale a * s_x,
    which keeps the integers as they are (exact), then ADD b with a fused RELU at the output's params: the one
    rounding the QDQ model makes. A MINIMUM at 1 only when the output's int8 range reaches above 1."""
    a, b = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    name, shape = ctx.node.name, ctx.out_shape(0)
    one = (1,) * len(shape)
    x, y = ctx.input(0), ctx.output(0)
    qx, qy = _in_quant(ctx, x), ctx.b.tensors[y].quant
    scaled = ctx.b.tensor(f"{name}/scaled", shape, np.int8, Quant([qx.scale[0] * a], [qx.zero_point[0]]))
    ctx.emit("MUL", [x, ctx.b.const(np.full(one, 127, np.int8), f"{name}/alpha", Quant([a / 127], [0]))], [scaled],
             S.MulOptionsT())
    top = int(round(1.0 / qy.scale[0])) + qy.zero_point[0]  # the int8 code of 1.0
    out = y if top >= 127 else ctx.b.tensor(f"{name}/shifted", shape, np.int8, qy)
    opts = S.AddOptionsT()
    opts.fusedActivationFunction = S.ActivationFunctionType.RELU
    beta = ctx.b.const(np.full(one, int(np.sign(b)) * 127, np.int8), f"{name}/beta", Quant([abs(b) / 127 or 1.0], [0]))
    ctx.emit("ADD", [scaled, beta], [out], opts)
    if out != y:
        ctx.emit("MINIMUM", [out, ctx.b.const(np.full(one, top, np.int8), f"{name}/one", qy)], [y])


@lowers("QLinearMatMul")
def qlinear_matmul_op(ctx: LowerCtx) -> None:
    """The exact integer product (float32 BATCH_MATMUL under 2^24), requantized as ONNX Runtime does."""
    qlinear_matmul(ctx)


@lowers("MatMulInteger")
def matmul_integer_op(ctx: LowerCtx) -> None:
    """The exact integer product (float32 BATCH_MATMUL under 2^24) as int32."""
    matmul_integer(ctx)


@lowers("DynamicQuantizeLinear")
def dynamic_quantize_op(ctx: LowerCtx) -> None:
    """uint8 scale and zero point from the tensor's range, then round/clamp (float arithmetic)."""
    dynamic_quantize(ctx)
