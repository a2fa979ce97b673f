"""Attention (opset 23-25), composed from matmul / softmax / select as ONNX's reference computes it: 3-D inputs
split into heads, past/present KV concatenated on the sequence axis, grouped-query heads repeated, scale applied
as sqrt(scale) to Q and K, softcap, additive bias from the bool/float mask, bottom-right causal alignment, sliding
window, per-batch kv lengths (nonpad_kv_seqlen), fully-masked rows zeroed, the four qk_matmul_output modes."""

from __future__ import annotations

import math

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto

from edgec.lower.coreml.ops._util import first, like, need_shape
from edgec.lower.coreml.registry import Env, NodeView, lowers

_Q, _K, _V, _MASK, _PAST_K, _PAST_V, _NONPAD = range(7)


def _i32(values) -> np.ndarray:
    return np.array(list(values), dtype=np.int32)


def _heads(n: NodeView) -> tuple[int, int]:
    q, k = n.shape(_Q), n.shape(_K)
    if len(q) == 4:
        return q[1], k[1]
    return int(n.attr("q_num_heads")), int(n.attr("kv_num_heads"))


def _check_attention(n: NodeView) -> str | None:
    why = first(*(need_shape(n, i) for i in (_Q, _K, _V, _MASK, _PAST_K, _PAST_V, _NONPAD) if n.has(i)))
    if why:
        return why
    q, k, v = n.shape(_Q), n.shape(_K), n.shape(_V)
    if not len(q) == len(k) == len(v) or len(q) not in (3, 4):
        return f"Q/K/V ranks {len(q)}/{len(k)}/{len(v)} (3-D or 4-D, all the same, are defined)"
    if len(q) == 3 and (n.attr("q_num_heads") is None or n.attr("kv_num_heads") is None):
        return "3-D inputs need q_num_heads and kv_num_heads"
    hq, hkv = _heads(n)
    if hq % hkv:
        return f"{hq} query heads are not a multiple of {hkv} kv heads"
    if n.has(_PAST_K) != n.has(_PAST_V):
        return "past_key and past_value must come together"
    if n.has(_NONPAD) and n.has(_PAST_K):
        return "nonpad_kv_seqlen with past_key/past_value is not defined"
    mode = int(n.attr("qk_matmul_output_mode", 0))
    if mode not in (0, 1, 2, 3):
        return f"qk_matmul_output_mode={mode}"
    return None


def _split_heads(n: NodeView, env: Env, x, heads: int, tag: str):
    """[B, S, heads * D] -> [B, heads, S, D]."""
    b, s, hidden = n.shape({"q": _Q, "k": _K, "v": _V}[tag])
    x = mb.reshape(x=x, shape=_i32([b, s, heads, hidden // heads]), name=env.tmp(n, f"{tag}_heads"))
    return mb.transpose(x=x, perm=_i32([0, 2, 1, 3]), name=env.tmp(n, f"{tag}_bhsd"))


def _repeat_heads(n: NodeView, env: Env, x, shape: list[int], reps: int, tag: str):
    """[B, H, S, D] -> [B, H * reps, S, D] with each head repeated in place (h0, h0, h1, h1, ...)."""
    b, h, s, d = shape
    x = mb.reshape(x=x, shape=_i32([b, h, 1, s, d]), name=env.tmp(n, f"{tag}_5d"))
    x = mb.tile(x=x, reps=_i32([1, 1, reps, 1, 1]), name=env.tmp(n, f"{tag}_tiled"))
    return mb.reshape(x=x, shape=_i32([b, h * reps, s, d]), name=env.tmp(n, f"{tag}_gqa"))


def _neg_inf_where_not(n: NodeView, env: Env, allowed, ref, tag: str):
    """0 where `allowed`, -inf elsewhere, in ref's float dtype. `a` has the full shape: MIL's select takes its
    output shape from a and b only, not from cond."""
    shape = allowed.shape if hasattr(allowed, "shape") else np.shape(allowed)
    zeros = np.zeros(tuple(int(d) for d in shape), dtype=like(ref, 0).dtype)
    return mb.select(cond=allowed, a=zeros, b=like(ref, -np.inf), name=env.tmp(n, tag))


def _mask_bias(n: NodeView, env: Env, ref, kv_len: int):
    """The attn_mask as an additive float bias, padded on the key axis to kv_len (False / -inf)."""
    m = env.var(n, _MASK)
    shape = n.shape(_MASK)
    boolean = n.dtype(_MASK) == TensorProto.BOOL
    if not boolean and n.dtype(_MASK) != n.dtype(_Q):
        m = mb.cast(x=m, dtype="fp16" if n.dtype(_Q) == TensorProto.FLOAT16 else "fp32", name=env.tmp(n, "mask_t"))
    if shape[-1] < kv_len:
        pad = np.full(list(shape[:-1]) + [kv_len - shape[-1]], False if boolean else -np.inf,
                      dtype=bool if boolean else np.dtype(like(ref, 0).dtype))
        m = mb.concat(values=[m, pad], axis=-1, name=env.tmp(n, "mask_padded"))
    return _neg_inf_where_not(n, env, m, ref, "mask_bias") if boolean else m


def _offset(n: NodeView, env: Env, q_len: int, past_len: int):
    """Where the query block starts among the keys: past length (a constant), or nonpad_kv_seqlen - q_len per
    batch ([B, 1, 1] int32, at run time)."""
    if n.has(_NONPAD) and not n.has(_PAST_K):
        lens = env.var(n, _NONPAD)
        if n.dtype(_NONPAD) != TensorProto.INT32:
            lens = mb.cast(x=lens, dtype="int32", name=env.tmp(n, "nonpad_i32"))
        lens = mb.reshape(x=lens, shape=_i32([-1, 1, 1]), name=env.tmp(n, "nonpad_b11"))
        return mb.sub(x=lens, y=np.int32(q_len), name=env.tmp(n, "offset"))
    return past_len


def _per_batch(n: NodeView, env: Env, bias, q_len: int, kv_len: int, tag: str):
    """A [B, q, kv] bias (from a per-batch offset) as [B, 1, q, kv]; a [q, kv] one as it is."""
    if bias.rank == 3:
        return mb.expand_dims(x=bias, axes=_i32([1]), name=env.tmp(n, f"{tag}_b1qk"))
    return bias


def _bias(n: NodeView, env: Env, ref, q_len: int, kv_len: int, past_len: int):
    """(additive bias or None, True if it may hold -inf), following the reference's order."""
    i = np.arange(q_len).reshape(-1, 1)
    j = np.arange(kv_len).reshape(1, -1)
    has_mask = n.has(_MASK)
    may_mask = has_mask
    causal = bool(n.attr("is_causal", 0))
    offset = _offset(n, env, q_len, past_len) if (causal or n.has(_NONPAD) or n.attr("left_window_size", -1) >= 0
                                                    or n.attr("right_window_size", -1) >= 0) else 0
    bias = _mask_bias(n, env, ref, kv_len) if has_mask else None
    if causal:  # attend key j iff j <= i + offset
        may_mask = True
        allowed = mb.less_equal(x=(j - i).astype(np.int32), y=offset if not isinstance(offset, int)
                                else np.int32(offset), name=env.tmp(n, "causal_ok"))
        c = _per_batch(n, env, _neg_inf_where_not(n, env, allowed, ref, "causal"), q_len, kv_len, "causal")
        bias = c if bias is None else mb.add(x=bias, y=c, name=env.tmp(n, "bias_causal"))
    left, right = int(n.attr("left_window_size", -1)), int(n.attr("right_window_size", -1))
    if left >= 0 or right >= 0:  # diff = i + offset - j within [-right, left]
        may_mask = True
        d = (i - j).astype(np.int32)
        diff = mb.add(x=d, y=offset, name=env.tmp(n, "diff")) if not isinstance(offset, int) else d + np.int32(offset)
        oks = []
        if left >= 0:
            oks.append(mb.less_equal(x=diff, y=np.int32(left), name=env.tmp(n, "left_ok")))
        if right >= 0:
            oks.append(mb.greater_equal(x=diff, y=np.int32(-right), name=env.tmp(n, "right_ok")))
        ok = oks[0] if len(oks) == 1 else mb.logical_and(x=oks[0], y=oks[1], name=env.tmp(n, "window_ok"))
        w = _per_batch(n, env, _neg_inf_where_not(n, env, ok, ref, "window"), q_len, kv_len, "window")
        bias = w if bias is None else mb.add(x=bias, y=w, name=env.tmp(n, "bias_window"))
    if n.has(_NONPAD):  # keys at or past each batch's length are padding
        may_mask = True
        lens = env.var(n, _NONPAD)
        if n.dtype(_NONPAD) != TensorProto.INT32:
            lens = mb.cast(x=lens, dtype="int32", name=env.tmp(n, "lens_i32"))
        lens = mb.reshape(x=lens, shape=_i32([-1, 1, 1, 1]), name=env.tmp(n, "lens_b111"))
        ok = mb.less(x=np.arange(kv_len, dtype=np.int32).reshape(1, 1, 1, -1), y=lens, name=env.tmp(n, "pad_ok"))
        p = _neg_inf_where_not(n, env, ok, ref, "padding")
        bias = p if bias is None else mb.add(x=bias, y=p, name=env.tmp(n, "bias_pad"))
    return bias, may_mask


@lowers("Attention", check=_check_attention)
def attention(n: NodeView, env: Env):
    """composed attention (matmul, softmax, select): the reference's arithmetic, every mask kind"""
    q_shape = n.shape(_Q)
    three_d = len(q_shape) == 3
    hq, hkv = _heads(n)
    q, k, v = env.var(n, _Q), env.var(n, _K), env.var(n, _V)
    if three_d:
        q, k, v = _split_heads(n, env, q, hq, "q"), _split_heads(n, env, k, hkv, "k"), _split_heads(n, env, v, hkv, "v")
    batch, q_len = q_shape[0], q_shape[1] if three_d else q_shape[2]
    head = (q_shape[2] // hq) if three_d else q_shape[3]
    kv_new = n.shape(_K)[1] if three_d else n.shape(_K)[2]
    v_head = (n.shape(_V)[2] // hkv) if three_d else n.shape(_V)[3]
    past_len = n.shape(_PAST_K)[2] if n.has(_PAST_K) else 0
    if n.has(_PAST_K):
        k = mb.concat(values=[env.var(n, _PAST_K), k], axis=2, name=env.tmp(n, "present_k"))
        v = mb.concat(values=[env.var(n, _PAST_V), v], axis=2, name=env.tmp(n, "present_v"))
    present_k, present_v = k, v
    kv_len = past_len + kv_new
    if hq != hkv:
        k = _repeat_heads(n, env, k, [batch, hkv, kv_len, head], hq // hkv, "k")
        v = _repeat_heads(n, env, v, [batch, hkv, kv_len, v_head], hq // hkv, "v")
    if _fused(n, env):  # iOS18+: CoreML's own attention op (a causal mask becomes a constant bool mask)
        mask = None
        if n.attr("is_causal", 0):
            mask = (np.arange(kv_len)[None, :] - np.arange(q_len)[:, None]) <= past_len
        y = mb.scaled_dot_product_attention(query=q, key=k, value=v, attn_mask=mask,
                                            name=env.tmp(n, "sdpa") if three_d else env.out(n))
        return _finish(n, env, y, three_d, batch, q_len, hq, v_head, present_k, present_v)
    scale = n.attr("scale")
    s = like(q, math.sqrt(1 / math.sqrt(head) if scale is None else float(scale)))
    scores = mb.matmul(x=mb.mul(x=q, y=s, name=env.tmp(n, "qs")), y=mb.mul(x=k, y=s, name=env.tmp(n, "ks")),
                       transpose_y=True, name=env.tmp(n, "qk"))
    softcap = float(n.attr("softcap", 0.0))
    if softcap > 0:
        scores = mb.mul(x=mb.tanh(x=mb.real_div(x=scores, y=like(q, softcap), name=env.tmp(n, "capdiv")),
                                  name=env.tmp(n, "captanh")), y=like(q, softcap), name=env.tmp(n, "capped"))
    bias, may_mask = _bias(n, env, q, q_len, kv_len, past_len)
    with_bias = scores if bias is None else mb.add(x=scores, y=bias, name=env.tmp(n, "qk_bias"))
    logits = with_bias
    half = n.dtype(_Q) == TensorProto.FLOAT16 and int(n.attr("softmax_precision", 0) or 0) == TensorProto.FLOAT
    if half:
        logits = mb.cast(x=logits, dtype="fp32", name=env.tmp(n, "logits_f32"))
    probs = mb.softmax(x=logits, axis=-1, name=env.tmp(n, "probs"))
    if may_mask:  # a row with no attendable key: 0 (not softmax's NaN), decided on the bias as the reference does
        row_max = mb.reduce_max(x=bias, axes=_i32([-1]), keep_dims=True, name=env.tmp(n, "bias_max"))
        dead = mb.equal(x=row_max, y=like(row_max, -np.inf), name=env.tmp(n, "dead_row"))
        probs = mb.select(cond=dead, a=like(probs, 0), b=probs, name=env.tmp(n, "probs_live"))
    if half:
        probs = mb.cast(x=probs, dtype="fp16", name=env.tmp(n, "probs_f16"))
    y = mb.matmul(x=probs, y=v, name=env.tmp(n, "pv") if three_d else env.out(n))
    outs = _finish(n, env, y, three_d, batch, q_len, hq, v_head, present_k, present_v)
    if len(n.outputs) > 3 and n.outputs[3]:
        mode = int(n.attr("qk_matmul_output_mode", 0))
        qk = {0: scores, 1: scores, 2: with_bias, 3: probs}[mode]
        outs.append(mb.identity(x=qk, name=env.out(n, 3)))
    return outs


def _fused(n: NodeView, env: Env) -> bool:
    """MIL scaled_dot_product_attention computes softmax(Q K^T / sqrt(D) + mask) V: usable on iOS18+ when the node
    asks for nothing more (default scale, no softcap, no qk output) and no row can be fully masked (no user mask,
    window or kv lengths; a causal mask always keeps key 0)."""
    from coremltools import target

    if env.opset is None or env.opset < target.iOS18:
        return False
    if n.attr("scale") is not None or float(n.attr("softcap", 0.0)) > 0 or n.has(_MASK) or n.has(_NONPAD):
        return False
    if n.attr("left_window_size", -1) >= 0 or n.attr("right_window_size", -1) >= 0:
        return False
    return not (len(n.outputs) > 3 and n.outputs[3])


def _finish(n: NodeView, env: Env, y, three_d: bool, batch: int, q_len: int, hq: int, v_head: int, present_k,
            present_v) -> list:
    """[Y (back to [B, S, H * Dv] for 3-D inputs), present_key, present_value]."""
    if three_d:
        y = mb.transpose(x=y, perm=_i32([0, 2, 1, 3]), name=env.tmp(n, "y_bshd"))
        y = mb.reshape(x=y, shape=_i32([batch, q_len, hq * v_head]), name=env.out(n))
    outs = [y]
    if len(n.outputs) > 1:
        outs += [mb.identity(x=present_k, name=env.out(n, 1)) if n.outputs[1] else None,
                 mb.identity(x=present_v, name=env.out(n, 2)) if len(n.outputs) > 2 and n.outputs[2] else None]
    return outs


def _check_rotary(n: NodeView) -> str | None:
    why = first(*(need_shape(n, i) for i in range(4) if n.has(i)))
    if why:
        return why
    shape = n.shape(0)
    if len(shape) not in (3, 4):
        return f"input rank {len(shape)} (3-D or 4-D)"
    if len(shape) == 3 and not n.attr("num_heads"):
        return "3-D input needs num_heads"
    return None


@lowers("RotaryEmbedding", check=_check_rotary)
def rotary_embedding(n: NodeView, env: Env):
    """x1 * cos - x2 * sin, x2 * cos + x1 * sin on the first rotary_embedding_dim features (halves, or even/odd
    pairs when interleaved); caches gathered by position_ids"""
    shape = list(n.shape(0))
    x = env.var(n, 0)
    three_d = len(shape) == 3
    if three_d:  # [B, S, H * D] -> [B, S, H, D]: heads after the sequence, so cos/sin broadcast on axis 2
        heads = int(n.attr("num_heads"))
        shape = [shape[0], shape[1], heads, shape[2] // heads]
        x = mb.reshape(x=x, shape=_i32(shape), name=env.tmp(n, "heads"))
    d = shape[-1]
    rd = int(n.attr("rotary_embedding_dim", 0)) or d
    half = rd // 2
    cos, sin = env.var(n, 1), env.var(n, 2)
    if n.has(3):
        pos = env.var(n, 3)
        if n.dtype(3) != TensorProto.INT32:
            pos = mb.cast(x=pos, dtype="int32", name=env.tmp(n, "pos"))
        cos = mb.gather(x=cos, indices=pos, axis=0, name=env.tmp(n, "cos"))
        sin = mb.gather(x=sin, indices=pos, axis=0, name=env.tmp(n, "sin"))
    # cos/sin are [B, S, half]: broadcast over the heads axis (1 for [B, H, S, D], 2 for [B, S, H, D])
    head_axis = 2 if three_d else 1
    cos = mb.expand_dims(x=cos, axes=_i32([head_axis]), name=env.tmp(n, "cos_h"))
    sin = mb.expand_dims(x=sin, axes=_i32([head_axis]), name=env.tmp(n, "sin_h"))
    rank = len(shape)

    def part(begin, end, stride, tag):
        b, e, s = [0] * rank, list(shape), [1] * rank
        b[-1], e[-1], s[-1] = begin, end, stride
        return mb.slice_by_index(x=x, begin=_i32(b), end=_i32(e), stride=_i32(s), name=env.tmp(n, tag))

    interleaved = bool(n.attr("interleaved", 0))
    x1 = part(0, rd, 2, "x1") if interleaved else part(0, half, 1, "x1")
    x2 = part(1, rd, 2, "x2") if interleaved else part(half, rd, 1, "x2")
    r1 = mb.sub(x=mb.mul(x=x1, y=cos, name=env.tmp(n, "x1c")), y=mb.mul(x=x2, y=sin, name=env.tmp(n, "x2s")),
                name=env.tmp(n, "r1"))
    r2 = mb.add(x=mb.mul(x=x2, y=cos, name=env.tmp(n, "x2c")), y=mb.mul(x=x1, y=sin, name=env.tmp(n, "x1s")),
                name=env.tmp(n, "r2"))
    if interleaved:  # back to (r1[0], r2[0], r1[1], r2[1], ...)
        pair = mb.stack(values=[r1, r2], axis=-1, name=env.tmp(n, "pairs"))
        rotated = mb.reshape(x=pair, shape=_i32(shape[:-1] + [rd]), name=env.tmp(n, "rotated"))
    else:
        rotated = mb.concat(values=[r1, r2], axis=-1, name=env.tmp(n, "rotated"))
    y = rotated if rd == d else mb.concat(values=[rotated, part(rd, d, 1, "pass")], axis=-1, name=env.tmp(n, "full"))
    if three_d:
        return mb.reshape(x=y, shape=_i32(n.shape(0)), name=env.out(n))
    return mb.identity(x=y, name=env.out(n))
