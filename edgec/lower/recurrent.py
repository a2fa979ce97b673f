"""ONNX LSTM / GRU / RNN as an unrolled cell, written once for every backend that has no fitting fused op.

A backend supplies an `Emitter` (a dozen primitive ops on its own tensors); `check` says why a node cannot be
lowered (before anything is emitted) and `emit` writes the cell. Why unrolled: TFLite's fused sequence LSTM keeps
its state in variable tensors and returns neither Y_h nor Y_c, and it has no GRU; streaming models need the states
as real inputs and outputs. The sequence length is static after shape fixing, so the loop is unrolled; the input
projection of all time steps is one matrix product, each step adds one product with the hidden state.

Equations and defaults follow the ONNX operator spec (gate order LSTM i,o,f,c; GRU z,r,h; clip bounds the input of
every activation; LSTM peepholes P = [Pi, Po, Pf]; input_forget couples f = 1 - i)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
# activation -> (number of alpha/beta params it consumes, default alpha, default beta)
ACTIVATIONS = {"Sigmoid": (0, None, None), "Tanh": (0, None, None), "Relu": (0, None, None),
               "LeakyRelu": (1, 0.01, None), "HardSigmoid": (2, 0.2, 0.5), "Affine": (2, 1.0, 0.0),
               "ScaledTanh": (2, 1.0, 1.0)}


class Emitter(Protocol):
    """Primitive ops on backend values (each value knows its static shape: `shape(v)`)."""

    def shape(self, v) -> tuple[int, ...]: ...
    def const(self, array: np.ndarray): ...
    def linear(self, x, weight: np.ndarray, bias: np.ndarray | None): ...  # x (M, K) @ weight (N, K).T + bias
    def add(self, a, b): ...
    def sub(self, a, b): ...
    def mul(self, a, b): ...
    def act(self, kind: str, x): ...  # sigmoid | tanh | relu
    def leaky_relu(self, x, alpha: float): ...
    def clip(self, x, lo: float, hi: float): ...
    def split(self, x, parts: int) -> list: ...  # equal parts along the last axis
    def unstack(self, x, axis: int) -> list: ...  # drops the axis
    def stack(self, values: list, axis: int): ...
    def reshape(self, x, shape: tuple[int, ...]): ...


@dataclass
class Spec:
    op: str
    hidden: int
    directions: list[str]  # "forward" / "reverse" per direction index
    layout: int
    clip: float | None
    acts: list[list[tuple[str, float | None, float | None]]]  # per direction: (kind, alpha, beta) per activation
    W: np.ndarray
    R: np.ndarray
    B: np.ndarray | None
    P: np.ndarray | None
    input_forget: bool
    linear_before_reset: bool


def check(op: str, attrs: dict, consts: list, x_shape, n_inputs: int) -> str | None:
    """Why this node cannot be unrolled, or None. consts: the numpy value (or None) of every input."""
    spec = _spec_or_reason(op, attrs, consts, x_shape, n_inputs)
    return spec if isinstance(spec, str) else None


def parse(op: str, attrs: dict, consts: list, x_shape, n_inputs: int) -> Spec:
    spec = _spec_or_reason(op, attrs, consts, x_shape, n_inputs)
    if isinstance(spec, str):
        raise ValueError(spec)
    return spec


def _attr(attrs: dict, name: str, default=None):
    v = attrs.get(name, default)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    return v


def _spec_or_reason(op, attrs, consts, x_shape, n_inputs) -> Spec | str:
    def given(i):
        return i < n_inputs and consts[i] is not _ABSENT

    if x_shape is None or len(x_shape) != 3 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in x_shape):
        return f"input X needs a static 3-D shape (got {x_shape}); fix the input shapes"
    for i, what in ((1, "W"), (2, "R"), (3, "B")) + (((7, "P"),) if op == "LSTM" else ()):
        if given(i) and consts[i] is None:
            return f"{what} (input {i}) must be a constant"
    layout = int(_attr(attrs, "layout", 0))
    T = int(x_shape[1] if layout else x_shape[0])
    if given(4):
        lens = consts[4]
        if lens is None or not np.all(np.asarray(lens) == T):
            return (f"sequence_lens shorter than the sequence ({T} steps) is not supported (the unrolled cell runs "
                    f"every step); pad and slice outside the model, or fix sequence_lens to {T}")
    direction = _attr(attrs, "direction", "forward")
    dirs = {"forward": ["forward"], "reverse": ["reverse"], "bidirectional": ["forward", "reverse"]}.get(direction)
    if dirs is None:
        return f"direction='{direction}' is not an ONNX value"
    n_acts = len(DEFAULT_ACTS[op])
    names = _attr(attrs, "activations") or DEFAULT_ACTS[op] * len(dirs)
    if len(names) != n_acts * len(dirs):
        return f"activations has {len(names)} entries, expected {n_acts * len(dirs)}"
    alphas = list(_attr(attrs, "activation_alpha", []) or [])
    betas = list(_attr(attrs, "activation_beta", []) or [])
    acts = []
    for d in range(len(dirs)):
        row = []
        for name in names[d * n_acts:(d + 1) * n_acts]:
            if name not in ACTIVATIONS:
                return f"activation '{name}' is not supported (supported: {', '.join(ACTIVATIONS)})"
            n_params, a0, b0 = ACTIVATIONS[name]
            alpha = alphas.pop(0) if n_params >= 1 and alphas else a0
            beta = betas.pop(0) if n_params >= 2 and betas else b0
            row.append((name, alpha, beta))
        acts.append(row)
    W, R = np.asarray(consts[1], np.float32), np.asarray(consts[2], np.float32)
    hidden = int(_attr(attrs, "hidden_size", R.shape[-1]))
    G = GATES[op]
    if W.shape[0] != len(dirs) or W.shape[1] != G * hidden or R.shape[1:] != (G * hidden, hidden):
        return f"W {W.shape} / R {R.shape} do not match hidden_size={hidden} and {len(dirs)} direction(s)"
    clip = _attr(attrs, "clip")
    return Spec(op=op, hidden=hidden, directions=dirs, layout=layout, clip=None if clip is None else float(clip),
                acts=acts, W=W, R=R,
                B=np.asarray(consts[3], np.float32) if given(3) else None,
                P=np.asarray(consts[7], np.float32) if op == "LSTM" and given(7) else None,
                input_forget=bool(_attr(attrs, "input_forget", 0)),
                linear_before_reset=bool(_attr(attrs, "linear_before_reset", 0)))


class _Absent:
    pass


_ABSENT = _Absent()  # an omitted optional input (distinct from a runtime input, whose const is None)


def input_consts(n_inputs: int, present: list[bool], const_of) -> list:
    """consts list for check/parse: _ABSENT for omitted inputs, else the constant value or None."""
    return [const_of(i) if i < len(present) and present[i] else _ABSENT for i in range(max(n_inputs, 8))]


def emit(e: Emitter, spec: Spec, x, initial: dict[str, Any], want: list[bool]) -> list:
    """Write the cell. x: X as given; initial: {"h": v, "c": v} runtime/constant initial states (absent = zeros).
    want: which of the outputs (Y, Y_h[, Y_c]) are used. Returns the values of the wanted outputs (None else)."""
    H, G, nd = spec.hidden, GATES[spec.op], len(spec.directions)
    d0, d1, I = e.shape(x)
    T, Bsz = (d1, d0) if spec.layout else (d0, d1)
    time_axis, dir_axis = (1, 1) if spec.layout else (0, 0)
    flat = e.reshape(x, (d0 * d1, I))
    states = {k: (e.unstack(v, dir_axis) if v is not None else [None] * nd) for k, v in initial.items()}
    finals_h, finals_c, seqs = [], [], []
    for d, direction in enumerate(spec.directions):
        bias = spec.B[d] if spec.B is not None else np.zeros(2 * G * H, np.float32)
        wb, rb = bias[:G * H], bias[G * H:]
        # GRU with linear_before_reset: the recurrent biases go with the product of h (the h-gate's is inside r*())
        in_bias = wb if spec.op == "GRU" and spec.linear_before_reset else wb + rb
        proj = e.reshape(e.linear(flat, spec.W[d], in_bias), (d0, d1, G * H))
        steps = e.unstack(proj, time_axis)
        order = range(T) if direction == "forward" else range(T - 1, -1, -1)
        h = states.get("h", [None] * nd)[d]
        c = states.get("c", [None] * nd)[d] if spec.op == "LSTM" else None
        zeros = np.zeros((Bsz, H), np.float32)
        h = e.const(zeros) if h is None else h
        if spec.op == "LSTM":
            c = e.const(zeros) if c is None else c
        outs = [None] * T
        for t in order:
            h, c = _STEP[spec.op](e, spec, d, steps[t], h, c, rb)
            outs[t] = h
        seqs.append(outs)
        finals_h.append(h)
        finals_c.append(c)
    results = [None, None, None]
    if want[0]:
        per_t = [e.stack([seqs[d][t] for d in range(nd)], dir_axis) for t in range(T)]  # [nd,B,H] or [B,nd,H]
        results[0] = e.stack(per_t, time_axis)
    if len(want) > 1 and want[1]:
        results[1] = e.stack(finals_h, dir_axis)
    if len(want) > 2 and want[2] and spec.op == "LSTM":
        results[2] = e.stack(finals_c, dir_axis)
    return results


def _act(e: Emitter, spec: Spec, x, act, clip: bool = True):
    kind, alpha, beta = act
    if spec.clip is not None and clip:  # ONNX Runtime clips the gates' inputs, not the cell state before h()
        x = e.clip(x, -spec.clip, spec.clip)
    if kind in ("Sigmoid", "Tanh", "Relu"):
        return e.act(kind.lower(), x)
    if kind == "LeakyRelu":
        return e.leaky_relu(x, float(alpha))
    if kind == "HardSigmoid":
        y = e.add(e.mul(x, e.const(np.float32(alpha))), e.const(np.float32(beta)))
        return e.clip(y, 0.0, 1.0)
    if kind == "Affine":
        return e.add(e.mul(x, e.const(np.float32(alpha))), e.const(np.float32(beta)))
    if kind == "ScaledTanh":
        return e.mul(e.act("tanh", e.mul(x, e.const(np.float32(beta)))), e.const(np.float32(alpha)))
    raise ValueError(kind)


def _lstm_step(e: Emitter, spec: Spec, d: int, xp, h, c, _rb):
    H = spec.hidden
    f_act, g_act, h_act = spec.acts[d]
    gates = e.add(xp, e.linear(h, spec.R[d], None))
    i, o, f, z = e.split(gates, 4)
    if spec.P is not None:
        pi, po, pf = (spec.P[d][k * H:(k + 1) * H] for k in range(3))
        i = e.add(i, e.mul(c, e.const(pi)))
        f = e.add(f, e.mul(c, e.const(pf)))
    i = _act(e, spec, i, f_act)
    f = e.sub(e.const(np.float32(1.0)), i) if spec.input_forget else _act(e, spec, f, f_act)
    c = e.add(e.mul(f, c), e.mul(i, _act(e, spec, z, g_act)))
    if spec.P is not None:
        o = e.add(o, e.mul(c, e.const(spec.P[d][H:2 * H])))
    o = _act(e, spec, o, f_act)
    return e.mul(o, _act(e, spec, c, h_act, clip=False)), c


def _gru_step(e: Emitter, spec: Spec, d: int, xp, h, _c, rb):
    H = spec.hidden
    f_act, g_act = spec.acts[d]
    xz, xr, xh = e.split(xp, 3)
    R = spec.R[d]
    if spec.linear_before_reset:
        hz, hr, hh = e.split(e.linear(h, R, rb), 3)
    else:
        hz, hr = e.split(e.linear(h, R[:2 * H], None), 2)
        hh = None
    z = _act(e, spec, e.add(xz, hz), f_act)
    r = _act(e, spec, e.add(xr, hr), f_act)
    if spec.linear_before_reset:
        cand = e.add(xh, e.mul(r, hh))
    else:
        cand = e.add(xh, e.linear(e.mul(r, h), R[2 * H:], None))
    n = _act(e, spec, cand, g_act)
    # (1 - z) * n + z * h  ==  n + z * (h - n)
    return e.add(n, e.mul(z, e.sub(h, n))), None


def _rnn_step(e: Emitter, spec: Spec, d: int, xp, h, _c, _rb):
    return _act(e, spec, e.add(xp, e.linear(h, spec.R[d], None)), spec.acts[d][0]), None


_STEP = {"LSTM": _lstm_step, "GRU": _gru_step, "RNN": _rnn_step}
