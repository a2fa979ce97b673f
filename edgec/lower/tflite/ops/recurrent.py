"""LSTM, GRU, RNN: the shared unrolled cell (edgec/lower/recurrent.py) in TFLite ops.

Why not UNIDIRECTIONAL_SEQUENCE_LSTM / _RNN: their states are variable tensors inside the interpreter (no initial
state input, no Y_h / Y_c output), so a streaming model could not carry its state between calls, and TFLite has
no GRU op at all. The unrolled cell is FULLY_CONNECTED + elementwise ops, all XNNPACK-delegated.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower import recurrent as rec
from edgec.lower.tflite.registry import LowerCtx, lowers

_ACT = {"sigmoid": "LOGISTIC", "tanh": "TANH", "relu": "RELU"}


class _Emitter:
    """Values are (tensor index, shape)."""

    def __init__(self, ctx: LowerCtx):
        self.ctx, self.n = ctx, 0

    def _tmp(self, shape, tag):
        self.n += 1
        return self.ctx.temp(tuple(int(d) for d in shape), np.float32, f"{tag}{self.n}"), tuple(int(d) for d in shape)

    def shape(self, v):
        return v[1]

    def const(self, array):
        array = np.asarray(array, np.float32)
        return self.ctx.constant(array, "c"), array.shape

    def linear(self, x, weight, bias):
        out = self._tmp((x[1][0], weight.shape[0]), "fc")
        b = self.ctx.constant(np.asarray(bias, np.float32), "bias") if bias is not None else -1
        self.ctx.emit("FULLY_CONNECTED", [x[0], self.ctx.constant(np.ascontiguousarray(weight, np.float32), "w"), b],
                      [out[0]], S.FullyConnectedOptionsT())
        return out

    def _binary(self, code, opts, a, b):
        out = self._tmp(np.broadcast_shapes(a[1], b[1]), code.lower())
        self.ctx.emit(code, [a[0], b[0]], [out[0]], opts)
        return out

    def add(self, a, b):
        return self._binary("ADD", S.AddOptionsT(), a, b)

    def sub(self, a, b):
        return self._binary("SUB", S.SubOptionsT(), a, b)

    def mul(self, a, b):
        return self._binary("MUL", S.MulOptionsT(), a, b)

    def act(self, kind, x):
        out = self._tmp(x[1], kind)
        self.ctx.emit(_ACT[kind], [x[0]], [out[0]])
        return out

    def leaky_relu(self, x, alpha):
        out = self._tmp(x[1], "leaky")
        opts = S.LeakyReluOptionsT()
        opts.alpha = float(alpha)
        self.ctx.emit("LEAKY_RELU", [x[0]], [out[0]], opts)
        return out

    def clip(self, x, lo, hi):
        y = self._binary("MAXIMUM", S.MaximumMinimumOptionsT(), x, self.const(np.float32(lo)))
        return self._binary("MINIMUM", S.MaximumMinimumOptionsT(), y, self.const(np.float32(hi)))

    def split(self, x, parts):
        shape = list(x[1])
        shape[-1] //= parts
        outs = [self._tmp(shape, "gate") for _ in range(parts)]
        opts = S.SplitOptionsT()
        opts.numSplits = parts
        self.ctx.emit("SPLIT", [self.ctx.constant(np.array(len(shape) - 1, np.int32), "axis"), x[0]],
                      [o[0] for o in outs], opts)
        return outs

    def unstack(self, x, axis):
        shape = x[1][:axis] + x[1][axis + 1:]
        outs = [self._tmp(shape, "step") for _ in range(x[1][axis])]
        opts = S.UnpackOptionsT()
        opts.num, opts.axis = x[1][axis], axis
        self.ctx.emit("UNPACK", [x[0]], [o[0] for o in outs], opts)
        return outs

    def stack(self, values, axis):
        shape = values[0][1][:axis] + (len(values),) + values[0][1][axis:]
        out = self._tmp(shape, "stack")
        opts = S.PackOptionsT()
        opts.valuesCount, opts.axis = len(values), axis
        self.ctx.emit("PACK", [v[0] for v in values], [out[0]], opts)
        return out

    def reshape(self, x, shape):
        out = self._tmp(shape, "reshape")
        self.ctx.emit("RESHAPE", [x[0], self.ctx.constant(np.array(shape, np.int32), "shape")], [out[0]])
        return out


def _consts(ctx: LowerCtx) -> list:
    present = [ctx.has_input(i) for i in range(len(ctx.node.inputs))]
    return rec.input_consts(len(ctx.node.inputs), present, ctx.const)


def _x_shape(ctx: LowerCtx):
    return tuple(ctx.g.shapes[ctx.node.inputs[0]]) if ctx.node.inputs[0] in ctx.g.shapes else None


@lowers("LSTM", "GRU", "RNN")
def recurrent(ctx: LowerCtx) -> None:
    """Unrolled cell: one FULLY_CONNECTED for every step's input, one per step for the state, LOGISTIC/TANH gates;
    initial states and Y_h/Y_c are ordinary tensors (streaming works)."""
    op = ctx.node.op
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (only float32)")
    why = rec.check(op, ctx.node.attrs, _consts(ctx), _x_shape(ctx), len(ctx.node.inputs))
    if why:
        ctx.unsupported(why)
    spec = rec.parse(op, ctx.node.attrs, _consts(ctx), _x_shape(ctx), len(ctx.node.inputs))
    e = _Emitter(ctx)
    initial = {}
    for key, i in (("h", 5), ("c", 6)) if op == "LSTM" else (("h", 5),):
        if ctx.has_input(i):
            initial[key] = (ctx.input(i), ctx.shape(i))
    outputs = ctx.node.outputs
    want = [j < len(outputs) and bool(outputs[j]) for j in range(3 if op == "LSTM" else 2)]
    results = rec.emit(e, spec, (ctx.input(0), _x_shape(ctx)), initial, want)
    for j, value in enumerate(results):
        if value is not None and want[j]:
            shape = ctx.out_shape(j)
            ctx.emit("RESHAPE", [value[0], ctx.constant(np.array(shape, np.int32), "out_shape")], [ctx.output(j)])
