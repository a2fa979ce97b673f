"""Attention (opset 23): BATCH_MATMUL + SOFTMAX composed, with masks (bool / additive), causal, GQA,
past/present KV cache, softcap and the qk_matmul_output modes.

Layout choices (the target can avoid these transposes, so it does): K^T is BATCH_MATMUL's adj_y, never a
TRANSPOSE; grouped-query heads share their KV head by folding the group into the query length
((B, Hq, L, E) -> (B, Hkv, g*L, E), a free RESHAPE) instead of repeating K and V. Only 3-D (B, L, H*E) inputs
pay one TRANSPOSE per tensor to reach the per-head layout (a RESHAPE when L or H is 1).
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers

_NEG_INF = np.float32(-np.inf)


def _t(ctx: LowerCtx, x: int, shape, perm, tag: str) -> tuple[int, tuple]:
    """TRANSPOSE x, or a RESHAPE when only size-1 axes move."""
    out_shape = tuple(shape[p] for p in perm)
    y = ctx.temp(out_shape, tag=tag)
    moved = [p for p in perm if shape[p] != 1]
    if moved == sorted(moved):
        ctx.emit("RESHAPE", [x, ctx.constant(np.array(out_shape, np.int32), "shape")], [y])
    else:
        ctx.emit("TRANSPOSE", [x, ctx.constant(np.array(perm, np.int32), "perm")], [y], S.TransposeOptionsT())
    return y, out_shape


def _reshape(ctx: LowerCtx, x: int, shape, tag: str, out: int | None = None) -> int:
    y = ctx.temp(tuple(shape), tag=tag) if out is None else out
    ctx.emit("RESHAPE", [x, ctx.constant(np.array(shape, np.int32), "shape")], [y])
    return y


def _heads(ctx: LowerCtx, i: int, heads: int, tag: str) -> tuple[int, tuple]:
    """Input i as (B, H, T, D): 4-D as is, 3-D (B, T, H*D) reshaped and moved head-major."""
    shape = ctx.shape(i)
    if len(shape) == 4:
        return ctx.input(i), shape
    b, t, hd = shape
    if hd % heads:
        ctx.unsupported(f"hidden size {hd} of input {i} is not a multiple of {heads} heads")
    x = _reshape(ctx, ctx.input(i), (b, t, heads, hd // heads), f"{tag}_split")
    return _t(ctx, x, (b, t, heads, hd // heads), (0, 2, 1, 3), f"{tag}_heads")


def _op(ctx: LowerCtx, code: str, ins: list[int], shape, tag: str, opts=None, dtype=np.float32,
        out: int | None = None) -> int:
    y = ctx.temp(tuple(shape), dtype, tag) if out is None else out
    ctx.emit(code, ins, [y], opts)
    return y


def _static_bias(ctx: LowerCtx, L: int, S_: int, past: int) -> np.ndarray | None:
    """Causal / sliding-window bias (0 or -inf) as a constant (L, S), offset-aligned by the past length."""
    causal = int(ctx.attr("is_causal", 0))
    left, right = int(ctx.attr("left_window_size", -1)), int(ctx.attr("right_window_size", -1))
    if not causal and left < 0 and right < 0:
        return None
    diff = (np.arange(L)[:, None] + past) - np.arange(S_)[None, :]  # query position - key position
    allowed = np.ones((L, S_), bool)
    if causal:
        allowed &= diff >= 0
    if left >= 0:
        allowed &= diff <= left
    if right >= 0:
        allowed &= -diff <= right
    return np.where(allowed, np.float32(0), _NEG_INF).astype(np.float32)


def _mask_bias(ctx: LowerCtx, S_: int) -> tuple[np.ndarray | None, int | None, tuple | None]:
    """attn_mask as an additive bias: (constant, None, None) or (None, tensor, shape); last axis padded to
    the total key length with -inf (False) as the reference does."""
    if not ctx.has_input(3):
        return None, None, None
    shape = ctx.shape(3)
    pad = S_ - shape[-1]
    if pad < 0:
        ctx.unsupported(f"attn_mask's last axis {shape[-1]} is longer than the key length {S_}")
    c = ctx.const(3)
    if c is not None:
        bias = np.where(c, np.float32(0), _NEG_INF) if c.dtype == np.bool_ else c.astype(np.float32)
        if pad:
            bias = np.pad(bias, [(0, 0)] * (bias.ndim - 1) + [(0, pad)], constant_values=_NEG_INF)
        return bias.astype(np.float32), None, None
    rank = len(shape)
    m = ctx.input(3)
    if ctx.dtype(3) == np.bool_:
        m = _op(ctx, "SELECT_V2", [m, ctx.constant(np.zeros((1,) * rank, np.float32), "zero"),
                                   ctx.constant(np.full((1,) * rank, _NEG_INF, np.float32), "ninf")], shape, "mask_bias")
    elif ctx.dtype(3) != np.float32:
        ctx.unsupported(f"attn_mask dtype {ctx.dtype(3)} (bool or float32)")
    if pad:
        full = tuple(shape[:-1]) + (S_,)
        paddings = np.zeros((rank, 2), np.int32)
        paddings[-1, 1] = pad
        m = _op(ctx, "PADV2", [m, ctx.constant(paddings, "mask_pad"), ctx.constant(np.array([_NEG_INF], np.float32), "ninf1")],
                full, "mask_padded", S.PadV2OptionsT())
        shape = full
    return None, m, tuple(shape)


def _full4(shape) -> tuple:
    return (1,) * (4 - len(shape)) + tuple(shape)


@lowers("Attention")
def attention(ctx: LowerCtx) -> None:
    """softmax(scale * Q K^T [softcap] + mask/causal bias) V composed from BATCH_MATMUL / SOFTMAX."""
    for i in (0, 1, 2, 4, 5):
        if ctx.has_input(i) and ctx.dtype(i) != np.float32:
            ctx.unsupported(f"input {i} dtype {ctx.dtype(i)} (float32 only)")
    if ctx.has_input(6):
        ctx.unsupported("nonpad_kv_seqlen (an external KV cache) is not lowered")
    if ctx.has_input(4) != ctx.has_input(5):
        ctx.unsupported("past_key and past_value must be given together")
    rank = len(ctx.shape(0))
    hq, hkv = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    if rank == 3 and (hq is None or hkv is None):
        ctx.unsupported("3-D inputs need q_num_heads and kv_num_heads")
    q, (B, Hq, L, E) = _heads(ctx, 0, hq or 0, "q")
    k, kshape = _heads(ctx, 1, hkv or 0, "k")
    v, vshape = _heads(ctx, 2, hkv or 0, "v")
    Hkv, Ev = kshape[1], vshape[3]
    if Hq % Hkv or vshape[1] != Hkv:
        ctx.unsupported(f"{Hq} query heads cannot share {Hkv} key/value heads")
    past = 0
    outs = ctx.node.outputs
    wants = [j < len(outs) and bool(outs[j]) for j in range(4)]
    if ctx.has_input(4):
        past = ctx.shape(4)[2]
        cat = S.ConcatenationOptionsT()
        cat.axis = 2
        kshape, vshape = (B, Hkv, past + kshape[2], E), (B, Hkv, past + vshape[2], Ev)
        k = _op(ctx, "CONCATENATION", [ctx.input(4), k], kshape, "present_k", cat,
                out=ctx.output(1) if wants[1] else None)
        v = _op(ctx, "CONCATENATION", [ctx.input(5), v], vshape, "present_v", cat,
                out=ctx.output(2) if wants[2] else None)
    else:  # present = the inputs themselves
        for j, t, shp in ((1, k, kshape), (2, v, vshape)):
            if wants[j]:
                _reshape(ctx, t, shp, "present", out=ctx.output(j))
    S_ = kshape[2]
    scale = ctx.attr("scale")
    scale = float(scale) if scale is not None else 1.0 / np.sqrt(E)
    g = Hq // Hkv
    if scale != 1.0:
        q = _op(ctx, "MUL", [q, ctx.constant(np.full((1, 1, 1, 1), scale, np.float32), "scale")], (B, Hq, L, E),
                "q_scaled", S.MulOptionsT())
    qg = _reshape(ctx, q, (B, Hkv, g * L, E), "q_grouped") if g > 1 else q
    mm = S.BatchMatMulOptionsT()
    mm.adjY = True
    scores = _op(ctx, "BATCH_MATMUL", [qg, k], (B, Hkv, g * L, S_), "scores", mm)
    sshape = (B, Hq, L, S_)
    if g > 1:
        scores = _reshape(ctx, scores, sshape, "scores_heads")
    softcap = float(ctx.attr("softcap", 0.0) or 0.0)
    if softcap > 0:
        t = _op(ctx, "MUL", [scores, ctx.constant(np.full((1,) * 4, 1.0 / softcap, np.float32), "inv_cap")], sshape,
                "capped", S.MulOptionsT())
        t = _op(ctx, "TANH", [t], sshape, "tanh")
        scores = _op(ctx, "MUL", [t, ctx.constant(np.full((1,) * 4, softcap, np.float32), "cap")], sshape, "softcapped",
                     S.MulOptionsT())
    mode = int(ctx.attr("qk_matmul_output_mode", 0))
    if mode not in (0, 1, 2, 3):
        ctx.unsupported(f"qk_matmul_output_mode={mode}")
    if wants[3] and mode in (0, 1):
        _reshape(ctx, scores, sshape, "qk_out", out=ctx.output(3))
    # the additive bias: constant parts folded in numpy, a runtime mask added as a tensor
    const_bias = _static_bias(ctx, L, S_, past)
    mconst, mtensor, mshape = _mask_bias(ctx, S_)
    if mconst is not None:
        const_bias = mconst if const_bias is None else mconst + const_bias
    logits = scores
    bias_t, bias_shape = None, None
    if const_bias is not None:
        const_bias = np.asarray(const_bias, np.float32).reshape(_full4(const_bias.shape))
        bias_t, bias_shape = ctx.constant(const_bias, "bias"), const_bias.shape
    if mtensor is not None:
        m4 = _reshape(ctx, mtensor, _full4(mshape), "mask4") if len(mshape) < 4 else mtensor
        if bias_t is None:
            bias_t, bias_shape = m4, _full4(mshape)
        else:
            bias_shape = tuple(np.broadcast_shapes(bias_shape, _full4(mshape)))
            bias_t = _op(ctx, "ADD", [m4, bias_t], bias_shape, "bias_sum", S.AddOptionsT())
    if bias_t is not None:
        logits = _op(ctx, "ADD", [scores, bias_t], sshape, "logits", S.AddOptionsT(),
                     out=ctx.output(3) if wants[3] and mode == 2 else None)
    elif wants[3] and mode == 2:
        _reshape(ctx, scores, sshape, "qk_out", out=ctx.output(3))
    sm = S.SoftmaxOptionsT()
    sm.beta = 1.0
    probs = _op(ctx, "SOFTMAX", [logits], sshape, "probs", sm)
    # a row whose bias is all -inf attends to nothing: its probabilities are 0 (softmax would give NaN)
    guard = None
    if mtensor is not None:
        red = S.ReducerOptionsT()
        red.keepDims = True
        rmax = _op(ctx, "REDUCE_MAX", [bias_t, ctx.constant(np.array([3], np.int32), "last")],
                   bias_shape[:3] + (1,), "bias_max", red)
        guard = _op(ctx, "EQUAL", [rmax, ctx.constant(np.full((1,) * 4, _NEG_INF, np.float32), "ninf4")],
                    bias_shape[:3] + (1,), "masked_row", dtype=np.bool_)
    elif const_bias is not None and np.isneginf(const_bias.max(axis=-1)).any():
        guard = ctx.constant(np.isneginf(const_bias.max(axis=-1, keepdims=True)), "masked_row")
    if guard is not None:
        probs = _op(ctx, "SELECT_V2", [guard, ctx.constant(np.zeros((1,) * 4, np.float32), "zero4"), probs], sshape,
                    "probs_guarded", out=ctx.output(3) if wants[3] and mode == 3 else None)
    elif wants[3] and mode == 3:
        _reshape(ctx, probs, sshape, "qk_out", out=ctx.output(3))
    pg = _reshape(ctx, probs, (B, Hkv, g * L, S_), "probs_grouped") if g > 1 else probs
    y4 = (B, Hq, L, Ev)
    if rank == 4 and g == 1:
        return ctx.emit("BATCH_MATMUL", [pg, v], [ctx.output(0)], S.BatchMatMulOptionsT())
    y = _op(ctx, "BATCH_MATMUL", [pg, v], (B, Hkv, g * L, Ev), "y", S.BatchMatMulOptionsT())
    if rank == 4:
        return _reshape(ctx, y, y4, "y", out=ctx.output(0)) and None
    y, _ = _t(ctx, _reshape(ctx, y, y4, "y4") if g > 1 else y, y4, (0, 2, 1, 3), "y_seq")
    _reshape(ctx, y, (B, L, Hq * Ev), "y3", out=ctx.output(0))
