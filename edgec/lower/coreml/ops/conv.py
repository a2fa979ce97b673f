"""Conv and ConvTranspose (1-3 spatial dims, groups, dilations, asymmetric pads)."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb

from edgec.lower.coreml.ops._util import check_auto_pad, first, mil_pad, need_const, need_shape, spatial_pads
from edgec.lower.coreml.registry import Env, NodeView, lowers, to_mil_array


def _geometry(n: NodeView):
    w_shape = n.shape(1)
    spatial = len(w_shape) - 2
    kernel = list(n.attr("kernel_shape", w_shape[2:]))
    strides = list(n.attr("strides", [1] * spatial))
    dilations = list(n.attr("dilations", [1] * spatial))
    return spatial, kernel, strides, dilations


def _check_conv(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_shape(n, 1), check_auto_pad(n))
    if why:
        return why
    if not 3 <= len(n.shape(0)) <= 5:
        return f"input rank {len(n.shape(0))}: CoreML conv takes 1-3 spatial dims"
    return None


def _bias(n: NodeView, env: Env, y, name: str):
    """Add a bias that is not a constant (CoreML's conv wants a const bias) as a broadcast add."""
    rank = len(n.shape(0))
    b = mb.reshape(x=env.var(n, 2), shape=np.array([1, -1] + [1] * (rank - 2), np.int32), name=f"{name}_b")
    return mb.add(x=y, y=b, name=name)


@lowers("Conv", check=_check_conv)
def conv(n: NodeView, env: Env):
    """conv with explicit custom pads (auto_pad resolved statically)"""
    spatial, kernel, strides, dilations = _geometry(n)
    pads = spatial_pads(n, n.shape(0)[2:], kernel, strides, dilations)
    kw = dict(x=env.var(n, 0), weight=env.var(n, 1), strides=np.array(strides, np.int32), pad_type="custom",
              pad=mil_pad(pads), dilations=np.array(dilations, np.int32), groups=int(n.attr("group", 1)))
    bias_const = n.const(2) if n.has(2) else None
    if n.has(2) and bias_const is None:
        return _bias(n, env, mb.conv(**kw, name=env.tmp(n, "conv")), env.out(n))
    if bias_const is not None:
        kw["bias"] = to_mil_array(bias_const)
    return mb.conv(**kw, name=env.out(n))


def _dequantized_const(n: NodeView, i: int) -> bool:
    """Input i is a DequantizeLinear of constants (an int8 weight the quantizer wrote): a constexpr in MIL."""
    dq = n.graph.producers.get(n.inputs[i]) if n.has(i) else None
    return dq is not None and dq.op_type == "DequantizeLinear" and all(
        not name or name in n.graph.consts for name in dq.input)


def _check_conv_transpose(n: NodeView) -> str | None:
    weight = None if _dequantized_const(n, 1) else need_const(n, 1, "the weight")
    bias = None if _dequantized_const(n, 2) else need_const(n, 2, "the bias")
    why = first(_check_conv(n), weight, bias)
    if why:
        return why
    if n.attr("auto_pad", "NOTSET") != "NOTSET" and "output_shape" not in n.attrs:
        return f"auto_pad={n.attr('auto_pad')} without output_shape is not lowered; give explicit pads"
    return None


def _transpose_pads(n: NodeView, in_spatial, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(begin, end) crops of the full transposed-conv output, output_padding folded into the end."""
    spatial = len(in_spatial)
    out_pad = list(n.attr("output_padding", [0] * spatial))
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    full = [s * (i - 1) + k for s, i, k in zip(strides, in_spatial, k_eff)]
    if "output_shape" in n.attrs:
        # ONNX: total padding from the requested size; SAME_UPPER puts the odd pixel at the end
        want = list(n.attr("output_shape"))[-spatial:]
        pairs = []
        for f, op, w in zip(full, out_pad, want):
            total = f + op - w
            small = total // 2
            upper = n.attr("auto_pad", "NOTSET") == "SAME_UPPER"
            pairs.append((small, total - small) if upper else (total - small, small))
        pads = pairs
    else:
        p = list(n.attr("pads", [0] * (2 * spatial)))
        pads = [(p[i], p[i + spatial]) for i in range(spatial)]
    return [(b, e - op) for (b, e), op in zip(pads, out_pad)]


def _const_value(env: Env, n: NodeView, i: int) -> np.ndarray:
    """A dequantized int32 bias: its DequantizeLinear lowered to a float numpy constant (ops/quant.py)."""
    v = env.value(n, i)
    if not isinstance(v, np.ndarray):
        v = v.val  # a constexpr's value, when MIL can compute it
    return np.asarray(v, np.float32)


@lowers("ConvTranspose", check=_check_conv_transpose)
def conv_transpose(n: NodeView, env: Env):
    """conv_transpose; output_padding beyond the end pad becomes zero padding + bias"""
    spatial, kernel, strides, dilations = _geometry(n)
    pairs = _transpose_pads(n, n.shape(0)[2:], kernel, strides, dilations)
    crop = [(b, max(e, 0)) for b, e in pairs]
    grow = [max(-e, 0) for _, e in pairs]  # output_padding past the kernel's reach: zeros (+ bias)
    bias = (n.const(2) if n.const(2) is not None else _const_value(env, n, 2)) if n.has(2) else None
    w = n.const(1)  # else an int8 weight: its constexpr_affine_dequantize (MIL takes a constexpr as a const)
    kw = dict(x=env.var(n, 0), weight=to_mil_array(w) if w is not None else env.var(n, 1),
              strides=np.array(strides, np.int32),
              pad_type="custom", pad=mil_pad(crop), dilations=np.array(dilations, np.int32),
              groups=int(n.attr("group", 1)))
    if not any(grow):
        if bias is not None:
            kw["bias"] = to_mil_array(bias)
        return mb.conv_transpose(**kw, name=env.out(n))
    y = mb.conv_transpose(**kw, name=env.tmp(n, "deconv"))
    y = mb.pad(x=y, pad=mil_pad([(0, g) for g in grow]), mode="constant", constant_val=0.0,
               name=env.tmp(n, "grow") if bias is not None else env.out(n))
    if bias is None:
        return y
    b = to_mil_array(bias).reshape([-1] + [1] * spatial)
    return mb.add(x=y, y=b, name=env.out(n))
