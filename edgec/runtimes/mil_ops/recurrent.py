"""Recurrent ops (iOS15 recurrent.py): lstm and rnn, per the op defs' equations. Weights are [gates*H, I] in MIL's
gate order (lstm: input, forget, output, cell); `bias` is input-hidden + hidden-hidden; states are [b, H]
([b, 2H] bidirectional: forward then backward halves); outputs are time-aligned with x in both directions (the
layout coremltools' own torch frontend relies on for bidirectional LSTMs). Options whose numerics the op defs
leave open (clip, peepholes, parametric activations) are refused at load time rather than guessed."""

from __future__ import annotations

import numpy as np

from . import mil_op
from .activation import sigmoid

_ACTS = {"sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0), "linear": lambda x: x}


def _check(consts: dict) -> str | None:
    for key in ("recurrent_activation", "cell_activation", "activation"):
        if key in consts and str(consts[key]).lower() not in _ACTS:
            return f"{key}={consts[key]} is not implemented (only {', '.join(_ACTS)})"
    for key in ("clip", "peephole", "peephole_back"):
        if consts.get(key) is not None:
            return f"{key} is not implemented (the op definition leaves its exact placement open)"
    return None


def _lstm_pass(x, h, c, w_ih, w_hh, b, reverse, acts):
    rec, cell, out = acts
    H = w_hh.shape[1]
    ys = [None] * x.shape[0]
    for t in (range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])):
        g = x[t] @ w_ih.T + h @ w_hh.T + b
        i, f, o, z = rec(g[:, :H]), rec(g[:, H:2 * H]), rec(g[:, 2 * H:3 * H]), cell(g[:, 3 * H:])
        c = f * c + i * z
        h = o * out(c)
        ys[t] = h
    return np.stack(ys), h, c


@mil_op("lstm", check=_check)
def lstm(x, initial_h, initial_c, weight_ih, weight_hh, bias=None, peephole=None, weight_ih_back=None,
         weight_hh_back=None, bias_back=None, peephole_back=None, direction="forward", output_sequence=False,
         recurrent_activation="sigmoid", cell_activation="tanh", activation="tanh", clip=None):
    x = np.asarray(x, np.float32)
    acts = tuple(_ACTS[str(a).lower()] for a in (recurrent_activation, cell_activation, activation))
    H = np.asarray(weight_hh).shape[1]
    h0, c0 = np.asarray(initial_h, np.float32), np.asarray(initial_c, np.float32)
    b = np.zeros(4 * H, np.float32) if bias is None else np.asarray(bias, np.float32)
    if direction == "bidirectional":
        bb = np.zeros(4 * H, np.float32) if bias_back is None else np.asarray(bias_back, np.float32)
        yf, hf, cf = _lstm_pass(x, h0[:, :H], c0[:, :H], weight_ih, weight_hh, b, False, acts)
        yb, hb, cb = _lstm_pass(x, h0[:, H:], c0[:, H:], weight_ih_back, weight_hh_back, bb, True, acts)
        y, h, c = np.concatenate([yf, yb], -1), np.concatenate([hf, hb], -1), np.concatenate([cf, cb], -1)
    else:
        y, h, c = _lstm_pass(x, h0, c0, np.asarray(weight_ih), np.asarray(weight_hh), b, direction == "reverse",
                             acts)
    if not output_sequence:
        y = y[-1:] if direction != "reverse" else y[:1]
    return y, h, c


@mil_op("rnn", check=_check)
def rnn(x, initial_h, weight_ih, weight_hh, bias=None, direction="forward", output_sequence=False,
        activation="tanh"):
    x = np.asarray(x, np.float32)
    act = _ACTS[str(activation).lower()]
    h = np.asarray(initial_h, np.float32)
    b = np.zeros(np.asarray(weight_hh).shape[0], np.float32) if bias is None else np.asarray(bias, np.float32)
    ys = [None] * x.shape[0]
    for t in (range(x.shape[0] - 1, -1, -1) if direction == "reverse" else range(x.shape[0])):
        h = act(x[t] @ np.asarray(weight_ih).T + h @ np.asarray(weight_hh).T + b)
        ys[t] = h
    y = np.stack(ys)
    if not output_sequence:
        y = y[-1:] if direction != "reverse" else y[:1]
    return y, h
