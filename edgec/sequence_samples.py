"""Bundled sequence samples, written with onnx.helper and seeded random weights (no torch needed at run time).

- `text_encoder`: a 2-layer BERT-style sentence encoder in the patterns exporters write: token ids, attention
  mask and token types in; word + position + type embeddings, LayerNormalization, multi-head attention with the
  padding mask built in-graph (Equal/Where), Erf GELU, mean pooling over the mask (Unsqueeze/Expand); a
  64-wide sentence embedding out.
- `streaming_audio`: a wake-word / voice-activity detector that apps run on 512-sample chunks in a loop:
  framing, Hann window, a DFT power spectrum as MatMuls, log, an LSTM whose (h, c) state comes in as an input
  and goes out as an output, and a sigmoid score.

Weights are scaled so activations stay in a trained net's range (unit-variance pre-activations), which keeps
numeric checks meaningful. Deterministic: the same name and seed give byte-identical files.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization
SEQ_LEN, VOCAB, HIDDEN, HEADS, FFN, LAYERS = 32, 1000, 64, 4, 128, 2
CHUNK, FRAMES, BINS, STATE = 512, 4, 65, 64


class _Graph:
    """Nodes and initializers with generated unique names."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.nodes, self.inits, self._n = rng, [], [], 0

    def const(self, value: np.ndarray, hint: str = "c") -> str:
        name = f"{hint}_{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, shape: tuple[int, ...], fan_in: int, hint: str = "w") -> str:
        return self.const(self.rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape).astype(np.float32), hint)

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, **attrs) -> str | list[str]:
        names = outputs if isinstance(outputs, list) else [f"{op_type.lower()}_{self._n}_{i}" for i in range(outputs)]
        self._n += 1
        self.nodes.append(helper.make_node(op_type, inputs, names, name=f"{op_type}_{self._n}", **attrs))
        return names[0] if len(names) == 1 else names


def _layer_norm(g: _Graph, x: str) -> str:
    scale = g.const(g.rng.uniform(0.9, 1.1, HIDDEN).astype(np.float32), "ln_scale")
    bias = g.const(g.rng.normal(0, 0.02, HIDDEN).astype(np.float32), "ln_bias")
    return g.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-12)


def _dense(g: _Graph, x: str, n_in: int, n_out: int) -> str:
    y = g.op("MatMul", [x, g.weight((n_in, n_out), n_in)])
    return g.op("Add", [y, g.const(g.rng.normal(0, 0.02, n_out).astype(np.float32), "b")])


def _heads(g: _Graph, x: str) -> str:
    """[1, S, H] -> [1, heads, S, H/heads]."""
    r = g.op("Reshape", [x, g.const(np.array([1, SEQ_LEN, HEADS, HIDDEN // HEADS], np.int64), "shape")])
    return g.op("Transpose", [r], perm=[0, 2, 1, 3])


def _attention(g: _Graph, x: str, mask_bias: str) -> str:
    q, k, v = (_heads(g, _dense(g, x, HIDDEN, HIDDEN)) for _ in range(3))
    scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
    scores = g.op("Div", [scores, g.const(np.array(np.sqrt(HIDDEN // HEADS), np.float32))])
    probs = g.op("Softmax", [g.op("Add", [scores, mask_bias])], axis=-1)
    ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    ctx = g.op("Reshape", [ctx, g.const(np.array([1, SEQ_LEN, HIDDEN], np.int64), "shape")])
    return _dense(g, ctx, HIDDEN, HIDDEN)


def _gelu(g: _Graph, x: str) -> str:
    erf = g.op("Erf", [g.op("Div", [x, g.const(np.array(np.sqrt(2.0), np.float32))])])
    half = g.op("Mul", [x, g.const(np.array(0.5, np.float32))])
    return g.op("Mul", [half, g.op("Add", [erf, g.const(np.array(1.0, np.float32))])])


def text_encoder(seed: int = 0) -> onnx.ModelProto:
    g = _Graph(np.random.default_rng(seed))
    ids, mask, types = "input_ids", "attention_mask", "token_type_ids"
    emb = g.op("Gather", [g.const(g.rng.normal(0, 1, (VOCAB, HIDDEN)).astype(np.float32), "word_emb"), ids])
    pos = g.const(g.rng.normal(0, 0.5, (SEQ_LEN, HIDDEN)).astype(np.float32), "pos_emb")
    typ = g.op("Gather", [g.const(g.rng.normal(0, 0.5, (2, HIDDEN)).astype(np.float32), "type_emb"), types])
    x = _layer_norm(g, g.op("Add", [g.op("Add", [emb, pos]), typ]))
    # padding mask as exporters write it: 0 where attended, a large negative where padded
    padded = g.op("Equal", [mask, g.const(np.array(0, np.int64))])
    bias = g.op("Where", [padded, g.const(np.array(-1e4, np.float32)), g.const(np.array(0.0, np.float32))])
    bias = g.op("Unsqueeze", [bias, g.const(np.array([1, 2], np.int64), "axes")])
    for _ in range(LAYERS):
        x = _layer_norm(g, g.op("Add", [x, _attention(g, x, bias)]))
        ffn = _dense(g, _gelu(g, _dense(g, x, HIDDEN, FFN)), FFN, HIDDEN)
        x = _layer_norm(g, g.op("Add", [x, ffn]))
    # mean pooling over the attended tokens
    m = g.op("Cast", [g.op("Unsqueeze", [mask, g.const(np.array([-1], np.int64), "axes")])], to=TensorProto.FLOAT)
    m = g.op("Expand", [m, g.op("Shape", [x])])
    summed = g.op("ReduceSum", [g.op("Mul", [x, m]), g.const(np.array([1], np.int64), "axes")], keepdims=0)
    count = g.op("ReduceSum", [m, g.const(np.array([1], np.int64), "axes")], keepdims=0)
    count = g.op("Clip", [count, g.const(np.array(1e-9, np.float32))])
    g.op("Div", [summed, count], outputs=["embedding"])
    tokens = [helper.make_tensor_value_info(n, TensorProto.INT64, [1, SEQ_LEN]) for n in (ids, mask, types)]
    out = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, HIDDEN])]
    return _model(g, "text_encoder", tokens, out)


def streaming_audio(seed: int = 0) -> onnx.ModelProto:
    g = _Graph(np.random.default_rng(seed))
    frame = CHUNK // FRAMES
    frames = g.op("Reshape", ["audio", g.const(np.array([1, FRAMES, frame], np.int64), "shape")])
    n = np.arange(frame)
    windowed = g.op("Mul", [frames, g.const((0.5 - 0.5 * np.cos(2 * np.pi * n / frame)).astype(np.float32), "hann")])
    k = np.arange(BINS)
    angle = 2 * np.pi * np.outer(n, k) / frame
    re = g.op("MatMul", [windowed, g.const(np.cos(angle).astype(np.float32), "dft_re")])
    im = g.op("MatMul", [windowed, g.const(-np.sin(angle).astype(np.float32), "dft_im")])
    power = g.op("Add", [g.op("Mul", [re, re]), g.op("Mul", [im, im])])
    logpow = g.op("Log", [g.op("Add", [power, g.const(np.array(1e-6, np.float32))])])
    # normalise the log spectrum to roughly unit scale, then time-major for the LSTM (layout 0)
    feats = g.op("Mul", [g.op("Add", [logpow, g.const(np.array(2.0, np.float32))]),
                         g.const(np.array(0.25, np.float32))])
    seq = g.op("Transpose", [feats], perm=[1, 0, 2])
    h0 = g.op("Slice", ["state", g.const(np.array([0], np.int64)), g.const(np.array([1], np.int64))])
    c0 = g.op("Slice", ["state", g.const(np.array([1], np.int64)), g.const(np.array([2], np.int64))])
    w = g.weight((1, 4 * STATE, BINS), BINS, "lstm_w")
    r = g.weight((1, 4 * STATE, STATE), STATE, "lstm_r")
    b = g.const(g.rng.normal(0, 0.1, (1, 8 * STATE)).astype(np.float32), "lstm_b")
    _, h, c = g.op("LSTM", [seq, w, r, b, "", h0, c0], 3, hidden_size=STATE)
    g.op("Concat", [h, c], outputs=["state_out"], axis=0)
    last = g.op("Reshape", [h, g.const(np.array([1, STATE], np.int64), "shape")])
    logit = g.op("Gemm", [last, g.weight((STATE, 1), STATE, "head_w"), g.const(np.zeros(1, np.float32), "head_b")])
    g.op("Sigmoid", [logit], outputs=["prob"])
    inputs = [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, CHUNK]),
              helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, 1, STATE])]
    outputs = [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1]),
               helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [2, 1, STATE])]
    return _model(g, "streaming_audio", inputs, outputs)


def _model(g: _Graph, name: str, inputs: list, outputs: list) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgec-samples")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


SEQUENCE_SAMPLES = {"text_encoder": text_encoder, "streaming_audio": streaming_audio}
