"""LSTM / GRU / RNN on TFLite (LiteRT) and CoreML (numpy MIL interpreter), each variant against ONNX Runtime:
directions, layouts, runtime initial states, Y_h/Y_c outputs, clip, activations, peepholes, input_forget,
linear_before_reset; sequence_lens shorter than the sequence is a clear refusal."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import conformance as conf
from edgec.errors import UnsupportedOp
from edgec.lower.backend import get_backend

T, B, I, H = 5, 2, 3, 4
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _model(op, direction="forward", layout=0, states=True, peep=False, seq_lens=None, **attrs):
    rng = np.random.default_rng(7)
    nd, g = (2 if direction == "bidirectional" else 1), GATES[op]
    x_shape = [B, T, I] if layout else [T, B, I]
    s_shape = [B, nd, H] if layout else [nd, B, H]
    consts = {"W": rng.normal(0, 0.6, (nd, g * H, I)), "R": rng.normal(0, 0.6, (nd, g * H, H)),
              "B": rng.normal(0, 0.3, (nd, 2 * g * H))}
    inputs = ["X", "W", "R", "B", "", "", "", ""]
    graph_in = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)]
    if seq_lens is not None:
        consts["L"] = np.array(seq_lens, np.int32)
        inputs[4] = "L"
    if states:
        inputs[5] = "h0"
        graph_in.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, s_shape))
        if op == "LSTM":
            inputs[6] = "c0"
            graph_in.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, s_shape))
    if peep:
        consts["P"] = rng.normal(0, 0.5, (nd, 3 * H))
        inputs[7] = "P"
    while inputs and not inputs[-1]:
        inputs.pop()
    outs = ["Y", "Y_h", "Y_c"][:3 if op == "LSTM" else 2]
    node = helper.make_node(op, inputs, outs, name="rnn", hidden_size=H, direction=direction, layout=layout,
                            **attrs)
    inits = [numpy_helper.from_array(v.astype(np.float32) if v.dtype != np.int32 else v, k) for k, v in consts.items()]
    graph = helper.make_graph([node], "g", graph_in,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    feeds = {i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
             for i in graph_in}
    return model, feeds


def _run(fmt, model, feeds):
    backend = get_backend(fmt)
    problems = backend.unsupported(model)
    if problems:
        raise UnsupportedOp(fmt, problems)
    with tempfile.TemporaryDirectory() as tmp:
        artifact = backend.lower(model, conf.context_for(fmt, Path(tmp), "rnn"))
        return backend.runner(artifact, 1).run(feeds)


CASES = {
    "lstm_bidir_layout1_states": ("LSTM", dict(direction="bidirectional", layout=1)),
    "lstm_reverse_peep_clip": ("LSTM", dict(direction="reverse", peep=True, clip=0.7)),
    "lstm_input_forget_acts": ("LSTM", dict(input_forget=1, activations=["HardSigmoid", "LeakyRelu", "ScaledTanh"],
                                            activation_alpha=[0.3, 0.05, 0.9], activation_beta=[0.4, 1.2])),
    "gru_lbr1_bidir": ("GRU", dict(direction="bidirectional", linear_before_reset=1)),
    "gru_lbr0_layout1": ("GRU", dict(layout=1, linear_before_reset=0)),
    "gru_clip_relu": ("GRU", dict(clip=1.5, activations=["Sigmoid", "Relu"])),
    "rnn_bidir_affine": ("RNN", dict(direction="bidirectional", activations=["Affine", "Tanh"],
                                     activation_alpha=[0.8], activation_beta=[0.1])),
    "rnn_seq_lens_full": ("RNN", dict(seq_lens=[T, T])),
}


@pytest.mark.parametrize("fmt", ["tflite", "coreml"])
@pytest.mark.parametrize("case", list(CASES))
def test_recurrent_matches_onnxruntime(fmt, case):
    op, kw = CASES[case]
    model, feeds = _model(op, **kw)
    names = [o.name for o in model.graph.output]
    if kw.get("layout"):  # ONNX Runtime refuses layout 1; onnx's reference implements it (default activations)
        from onnx.reference import ReferenceEvaluator

        expected = dict(zip(names, ReferenceEvaluator(model).run(None, feeds)))
    else:
        ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = dict(zip(names, ref.run(None, feeds)))
    got = _run(fmt, model, feeds)
    for name, want in expected.items():
        assert got[name].shape == want.shape, (name, got[name].shape, want.shape)
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-5, err_msg=f"{case} {name}")


@pytest.mark.parametrize("fmt", ["tflite", "coreml"])
def test_short_sequence_lens_is_refused_with_the_reason(fmt):
    model, _ = _model("LSTM", seq_lens=[T, 2])
    problems = get_backend(fmt).unsupported(model)
    assert [(op, why) for op, _, why in problems if "sequence_lens" in why] and problems[0][0] == "LSTM"


@pytest.mark.parametrize("fmt", ["tflite", "coreml"])
def test_onnx_node_tests_pass(fmt):
    results = conf.run(fmt, ops=["LSTM", "GRU", "RNN"])
    assert len(results) == 18
    bad = [(r.name, r.outcome, r.detail) for r in results if r.outcome != "pass"]
    assert not bad, bad
