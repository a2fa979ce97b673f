"""State-carrying sequence blocks of recent opsets, unrolled over their static length:
CausalConvWithState (a depthwise causal conv1d over [past_state, input], tap by tap) and LinearAttention
(linear / gated / delta / gated-delta state updates, one step per token, BATCH_MATMULs per step)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers

_OPTS = {"ADD": S.AddOptionsT, "SUB": S.SubOptionsT, "MUL": S.MulOptionsT}
_MAX_STEPS = 64  # unrolled steps (tokens) a LinearAttention may take


def _op(ctx: LowerCtx, code: str, ins, shape, tag: str, opts=None, out=None) -> int:
    t = ctx.temp(tuple(int(d) for d in shape), np.float32, tag) if out is None else out
    ctx.emit(code, list(ins), [t], opts if opts is not None else (_OPTS[code]() if code in _OPTS else None))
    return t


def _slice(ctx: LowerCtx, x: int, shape, axis: int, start: int, size: int, tag: str, out=None) -> int:
    begin = np.zeros(len(shape), np.int32)
    end = np.array(shape, np.int32)
    begin[axis], end[axis] = start, start + size
    new = tuple(size if i == axis else d for i, d in enumerate(shape))
    return _op(ctx, "STRIDED_SLICE", [x, ctx.constant(begin, f"{tag}_b"), ctx.constant(end, f"{tag}_e"),
                                      ctx.constant(np.ones(len(shape), np.int32), f"{tag}_s")], new, tag,
               S.StridedSliceOptionsT(), out=out)


def _reshape(ctx: LowerCtx, x: int, shape, tag: str, out=None) -> int:
    return _op(ctx, "RESHAPE", [x, ctx.constant(np.array(shape, np.int32), f"{tag}_shape")], shape, tag, out=out)


@lowers("CausalConvWithState")
def causal_conv_with_state(ctx: LowerCtx) -> None:
    """padded = [past_state or zeros, x]; y[c, t] = sum_j w[c, j] padded[c, t + j] (+ bias, SiLU);
    present_state = the last k - 1 steps of padded."""
    for i in (0, 1):
        if ctx.dtype(i) != np.float32:
            ctx.unsupported(f"input {i} dtype {ctx.dtype(i)} (float32 only)")
    act = ctx.attr("activation", "none")
    if act not in ("none", "silu", "swish"):
        ctx.unsupported(f"activation='{act}'")
    B, C, L = ctx.shape(0)
    k = ctx.shape(1)[2]
    x = ctx.input(0)
    if k > 1:
        past = ctx.input(3) if ctx.has_input(3) else ctx.constant(np.zeros((B, C, k - 1), np.float32), "zeros")
        cat = S.ConcatenationOptionsT()
        cat.axis = 2
        padded = _op(ctx, "CONCATENATION", [past, x], (B, C, L + k - 1), "padded", cat)
    else:
        padded = x
    pshape = (B, C, L + k - 1)
    w = ctx.input(1)
    acc = None
    for j in range(k):
        tap = _slice(ctx, padded, pshape, 2, j, L, f"tap{j}") if k > 1 else padded
        wj = _reshape(ctx, _slice(ctx, w, (C, 1, k), 2, j, 1, f"w{j}"), (1, C, 1), f"w{j}_b")
        term = _op(ctx, "MUL", [tap, wj], (B, C, L), f"term{j}")
        acc = term if acc is None else _op(ctx, "ADD", [acc, term], (B, C, L), f"acc{j}")
    if ctx.has_input(2):
        acc = _op(ctx, "ADD", [acc, _reshape(ctx, ctx.input(2), (1, C, 1), "bias")], (B, C, L), "biased")
    if act != "none":
        acc = _op(ctx, "MUL", [acc, _op(ctx, "LOGISTIC", [acc], (B, C, L), "sigmoid")], (B, C, L), "silu")
    _reshape(ctx, acc, (B, C, L), "y", out=ctx.output(0))
    if len(ctx.node.outputs) > 1 and ctx.node.outputs[1]:
        if k == 1:
            ctx.unsupported("kernel size 1: the present state is empty (TFLite tensors cannot have a zero dimension)")
        _slice(ctx, padded, pshape, 2, L, k - 1, "present", out=ctx.output(1))


def _heads(ctx: LowerCtx, x: int, B: int, T: int, H: int, D: int, tag: str) -> int:
    """(B, T, H*D) -> (B, H, T, D)."""
    t = _reshape(ctx, x, (B, T, H, D), f"{tag}_split")
    if T == 1 or H == 1:
        return _reshape(ctx, t, (B, H, T, D), f"{tag}_heads")
    return _op(ctx, "TRANSPOSE", [t, ctx.constant(np.array([0, 2, 1, 3], np.int32), f"{tag}_perm")], (B, H, T, D),
               f"{tag}_heads", S.TransposeOptionsT())


@lowers("LinearAttention")
def linear_attention(ctx: LowerCtx) -> None:
    """Per token: state *= exp(decay); v' = beta (v - state^T k) (delta rules); state += k v'^T;
    y = scale * q^T state (query heads grouped onto their KV head). Unrolled over the static length."""
    for i in (0, 1, 2, 3, 4, 5):
        if ctx.has_input(i) and ctx.dtype(i) != np.float32:
            ctx.unsupported(f"input {i} dtype {ctx.dtype(i)} (float32 only)")
    rule = ctx.attr("update_rule", "gated_delta")
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if rule not in ("linear", "gated", "delta", "gated_delta") or gating != ctx.has_input(4) or delta != ctx.has_input(5):
        ctx.unsupported(f"update_rule='{rule}' with these decay/beta inputs")
    hq, hkv = int(ctx.attr("q_num_heads")), int(ctx.attr("kv_num_heads"))
    B, T, qhd = ctx.shape(0)
    dk, dv, g = qhd // hq, ctx.shape(2)[2] // hkv, hq // hkv
    if T > _MAX_STEPS:
        ctx.unsupported(f"{T} tokens: the recurrence is unrolled up to {_MAX_STEPS} steps")
    scale = float(ctx.attr("scale", 0.0) or 0.0) or 1.0 / np.sqrt(dk)
    q = _heads(ctx, ctx.input(0), B, T, hq, dk, "q")
    k = _heads(ctx, ctx.input(1), B, T, hkv, dk, "k")
    v = _heads(ctx, ctx.input(2), B, T, hkv, dv, "v")
    dec = beta = None
    if gating:
        dl = ctx.shape(4)[2]
        dec = _heads(ctx, ctx.input(4), B, T, hkv, dl // hkv, "decay")
        dshape = (B, hkv, T, dl // hkv)
    if delta:
        bl = ctx.shape(5)[2]
        beta = _heads(ctx, ctx.input(5), B, T, bl, 1, "beta")
        bshape = (B, bl, T, 1)
    sshape = (B, hkv, dk, dv)
    state = ctx.input(3) if ctx.has_input(3) else None
    mm = S.BatchMatMulOptionsT
    outs = []
    for t in range(T):
        k_t = _slice(ctx, k, (B, hkv, T, dk), 2, t, 1, f"k{t}")  # (B, H, 1, dk)
        v_t = _slice(ctx, v, (B, hkv, T, dv), 2, t, 1, f"v{t}")  # (B, H, 1, dv)
        if gating and state is not None:
            gt = _op(ctx, "EXP", [_slice(ctx, dec, dshape, 2, t, 1, f"g{t}")], (B, hkv, 1, dshape[3]), f"eg{t}")
            gt = _reshape(ctx, gt, (B, hkv, dshape[3], 1), f"eg{t}_col")  # broadcast over dv
            state = _op(ctx, "MUL", [state, gt], sshape, f"decayed{t}")
        if delta:
            if state is not None:  # retrieved = k_t @ state: (B, H, 1, dv)
                got = _op(ctx, "BATCH_MATMUL", [k_t, state], (B, hkv, 1, dv), f"retrieved{t}", mm())
                v_t = _op(ctx, "SUB", [v_t, got], (B, hkv, 1, dv), f"residual{t}")
            v_t = _op(ctx, "MUL", [v_t, _slice(ctx, beta, bshape, 2, t, 1, f"beta{t}")], (B, hkv, 1, dv), f"vb{t}")
        adj = mm()
        adj.adjX = True  # k_t^T v_t: (B, H, dk, 1) x (B, H, 1, dv)
        outer = _op(ctx, "BATCH_MATMUL", [k_t, v_t], sshape, f"outer{t}", adj)
        state = outer if state is None else _op(ctx, "ADD", [state, outer], sshape, f"state{t}")
        q_t = _slice(ctx, q, (B, hq, T, dk), 2, t, 1, f"q{t}")  # (B, Hq, 1, dk)
        q_g = _reshape(ctx, q_t, (B, hkv, g, dk), f"q{t}_grouped")
        y_t = _op(ctx, "BATCH_MATMUL", [q_g, state], (B, hkv, g, dv), f"read{t}", mm())
        outs.append(_reshape(ctx, y_t, (B, 1, hq * dv), f"y{t}"))  # heads in order h = kv * g + r
    ys = outs[0]
    if T > 1:
        cat = S.ConcatenationOptionsT()
        cat.axis = 1
        ys = _op(ctx, "CONCATENATION", outs, (B, T, hq * dv), "ys", cat)
    _op(ctx, "MUL", [ys, ctx.constant(np.full((1, 1, 1), scale, np.float32), "scale")], (B, T, hq * dv), "y",
        out=ctx.output(0))
    if len(ctx.node.outputs) > 1 and ctx.node.outputs[1]:
        _reshape(ctx, state, sshape, "present", out=ctx.output(1))
