"""LSTM, GRU, RNN: MIL's fused `lstm` / `rnn` where they express the node exactly, else the shared unrolled cell
(edgec/lower/recurrent.py) in MIL ops (linear, sigmoid/tanh, mul, add).

Fused: LSTM forward or bidirectional and RNN forward, with sigmoid/tanh/relu activations, no clip, no peepholes,
no input_forget (what torch exports). Unrolled: everything else -- MIL's gru has one bias per gate (ONNX's
linear_before_reset GRU, which torch exports, keeps the recurrent h-gate bias inside r * (...)); MIL lstm's clip
and peephole placement and the time order of a lone reverse direction are not pinned down by the op definition.
"""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb

from edgec.lower import recurrent as rec
from edgec.lower.coreml.registry import Env, NodeView, lowers


class _Emitter:
    def __init__(self, n: NodeView, env: Env):
        self.n, self.env, self.k = n, env, 0

    def _name(self, tag):
        self.k += 1
        return self.env.tmp(self.n, f"{tag}{self.k}")

    def shape(self, v):
        return tuple(int(d) for d in (v.shape if isinstance(v, np.ndarray) else v.shape))

    def const(self, array):
        return mb.const(val=np.asarray(array, np.float32), name=self._name("c"))

    def linear(self, x, weight, bias):
        b = np.zeros(weight.shape[0], np.float32) if bias is None else np.asarray(bias, np.float32)
        return mb.linear(x=x, weight=np.ascontiguousarray(weight, np.float32), bias=b, name=self._name("fc"))

    def add(self, a, b):
        return mb.add(x=a, y=b, name=self._name("add"))

    def sub(self, a, b):
        return mb.sub(x=a, y=b, name=self._name("sub"))

    def mul(self, a, b):
        return mb.mul(x=a, y=b, name=self._name("mul"))

    def act(self, kind, x):
        return getattr(mb, kind)(x=x, name=self._name(kind))

    def leaky_relu(self, x, alpha):
        return mb.leaky_relu(x=x, alpha=np.float32(alpha), name=self._name("leaky"))

    def clip(self, x, lo, hi):
        return mb.clip(x=x, alpha=np.float32(lo), beta=np.float32(hi), name=self._name("clip"))

    def split(self, x, parts):
        return list(mb.split(x=x, num_splits=parts, axis=-1, name=self._name("gates")))

    def unstack(self, x, axis):
        count = self.shape(x)[axis]
        if count == 1:
            return [mb.squeeze(x=x, axes=[axis], name=self._name("step"))]
        parts = mb.split(x=x, num_splits=count, axis=axis, name=self._name("steps"))
        return [mb.squeeze(x=p, axes=[axis], name=self._name("step")) for p in parts]

    def stack(self, values, axis):
        if len(values) == 1:
            return mb.expand_dims(x=values[0], axes=[axis], name=self._name("stack"))
        return mb.stack(values=values, axis=axis, name=self._name("stack"))

    def reshape(self, x, shape):
        return mb.reshape(x=x, shape=np.array(shape, np.int32), name=self._name("reshape"))


def _consts(n: NodeView) -> list:
    return rec.input_consts(len(n.inputs), [n.has(i) for i in range(len(n.inputs))], n.const)


def _check(n: NodeView) -> str | None:
    if n.dtype(0) not in (None, 1):
        return "only float32 input"
    return rec.check(n.op, n.attrs, _consts(n), n.shape(0), len(n.inputs))


_MIL_ACT = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu"}


def _fused(spec: rec.Spec) -> bool:
    acts_ok = all(kind in _MIL_ACT for row in spec.acts for kind, _, _ in row)
    if spec.op == "LSTM":
        return (acts_ok and spec.clip is None and spec.P is None and not spec.input_forget
                and spec.directions in (["forward"], ["forward", "reverse"]) and spec.acts[0] == spec.acts[-1])
    return spec.op == "RNN" and acts_ok and spec.clip is None and spec.directions == ["forward"]


def _lower_fused(n: NodeView, env: Env, spec: rec.Spec):
    """MIL lstm / rnn on [T, B, I]; ONNX's [dirs, B, H] states are MIL's [B, dirs*H] (forward half first)."""
    H, nd = spec.hidden, len(spec.directions)
    x = env.var(n, 0)
    T, Bsz = (n.shape(0)[1], n.shape(0)[0]) if spec.layout else (n.shape(0)[0], n.shape(0)[1])
    if spec.layout:
        x = mb.transpose(x=x, perm=[1, 0, 2], name=env.tmp(n, "x_tbi"))

    def state(i):
        if not n.has(i):
            return np.zeros((Bsz, nd * H), np.float32)
        v = env.var(n, i)
        if not spec.layout:  # [nd, B, H] -> [B, nd, H]
            v = mb.transpose(x=v, perm=[1, 0, 2], name=env.tmp(n, f"s{i}_t"))
        return mb.reshape(x=v, shape=np.array([Bsz, nd * H], np.int32), name=env.tmp(n, f"s{i}"))

    G = rec.GATES[spec.op]
    bias = spec.B if spec.B is not None else np.zeros((nd, 2 * G * H), np.float32)
    order = np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 2, 1, 3)]) if spec.op == "LSTM" else \
        np.arange(H)  # ONNX i,o,f,c -> MIL i,f,o,c
    w = [np.ascontiguousarray(spec.W[d][order]) for d in range(nd)]
    r = [np.ascontiguousarray(spec.R[d][order]) for d in range(nd)]
    b = [(bias[d][:G * H] + bias[d][G * H:])[order].astype(np.float32) for d in range(nd)]
    if spec.op == "LSTM":
        f_act, g_act, h_act = (_MIL_ACT[k] for k, _, _ in spec.acts[0])
        extra = dict(weight_ih_back=w[1], weight_hh_back=r[1], bias_back=b[1]) if nd == 2 else {}
        y, h, c = mb.lstm(x=x, initial_h=state(5), initial_c=state(6), weight_ih=w[0], weight_hh=r[0], bias=b[0],
                          direction="bidirectional" if nd == 2 else "forward", output_sequence=True,
                          recurrent_activation=f_act, cell_activation=g_act, activation=h_act,
                          name=env.tmp(n, "lstm"), **extra)
        finals = [h, c]
    else:
        y, h = mb.rnn(x=x, initial_h=state(5), weight_ih=w[0], weight_hh=r[0], bias=b[0], direction="forward",
                      output_sequence=True, activation=_MIL_ACT[spec.acts[0][0][0]], name=env.tmp(n, "rnn"))
        finals = [h]
    outs = [None] * len(n.outputs)
    if n.outputs and n.outputs[0]:  # [T, B, nd*H] -> [T, nd, B, H] (layout 1: [B, T, nd, H])
        y4 = mb.reshape(x=y, shape=np.array([T, Bsz, nd, H], np.int32), name=env.tmp(n, "y4"))
        outs[0] = mb.transpose(x=y4, perm=[1, 0, 2, 3] if spec.layout else [0, 2, 1, 3], name=env.out(n, 0))
    for j, v in enumerate(finals, start=1):
        if j < len(n.outputs) and n.outputs[j]:  # [B, nd*H] -> [nd, B, H] (layout 1: [B, nd, H])
            name = env.out(n, j)
            if spec.layout:
                outs[j] = mb.reshape(x=v, shape=np.array([Bsz, nd, H], np.int32), name=name)
            else:
                v3 = mb.reshape(x=v, shape=np.array([Bsz, nd, H], np.int32), name=env.tmp(n, f"o{j}"))
                outs[j] = mb.transpose(x=v3, perm=[1, 0, 2], name=name)
    return outs


@lowers("LSTM", "GRU", "RNN", check=_check)
def recurrent(n: NodeView, env: Env):
    """MIL lstm / rnn where exact (forward/bidirectional, plain activations), else an unrolled cell: linear per
    step (one batched linear for every step's input), sigmoid/tanh gates; states are ordinary tensors"""
    spec = rec.parse(n.op, n.attrs, _consts(n), n.shape(0), len(n.inputs))
    if _fused(spec):
        return _lower_fused(n, env, spec)
    e = _Emitter(n, env)
    initial = {}
    for key, i in (("h", 5), ("c", 6)) if n.op == "LSTM" else (("h", 5),):
        if n.has(i):
            initial[key] = env.var(n, i)
    want = [j < len(n.outputs) and bool(n.outputs[j]) for j in range(3 if n.op == "LSTM" else 2)]
    results = rec.emit(e, spec, env.var(n, 0), initial, want)
    out = []
    for j, value in enumerate(results):
        if value is None or not want[j]:
            out.append(None)
            continue
        shape = n.out_shape(j) or list(e.shape(value))
        out.append(mb.reshape(x=value, shape=np.array(shape, np.int32), name=env.out(n, j)))
    return out
