"""LSTM, GRU, RNN: the shared unrolled cell (edgec/lower/recurrent.py) in MIL ops (linear, sigmoid/tanh, mul, add).

Why not MIL `lstm` / `gru` / `rnn`: MIL's gru has one bias per gate (ONNX's linear_before_reset GRU, which torch
exports, keeps the recurrent h-gate bias inside r * (...)) and no input_forget / peephole-free coupling for lstm;
the unrolled cell covers every ONNX variant exactly, with the states as ordinary inputs/outputs.
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


@lowers("LSTM", "GRU", "RNN", check=_check)
def recurrent(n: NodeView, env: Env):
    """unrolled cell: linear per step (one batched linear for every step's input), sigmoid/tanh gates; initial
    states and Y_h / Y_c are ordinary tensors"""
    spec = rec.parse(n.op, n.attrs, _consts(n), n.shape(0), len(n.inputs))
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
