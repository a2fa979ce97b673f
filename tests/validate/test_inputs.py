"""Validation inputs from each input's domain (edgec.validate.inputs), on a BERT-style encoder written in the usual
export patterns: token ids and token_type_ids into Gather tables, a 0/1 attention mask as (1 - m) * finfo.min."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import api
from edgec.errors import ReferenceNotFinite, UsageError
from edgec.graph.inputs import input_domains, input_specs, random_inputs

SEQ, HID, VOCAB = 16, 32, 100


def bert_like() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def w(*shape, s=0.2):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    c = {"word": w(VOCAB, HID), "types": w(2, HID), "pos": w(1, SEQ, HID), "g": np.ones(HID, np.float32),
         "b": np.zeros(HID, np.float32), "wq": w(HID, HID), "wk": w(HID, HID), "wv": w(HID, HID), "wo": w(HID, HID),
         "one": np.array(1.0, np.float32), "neg": np.array(np.finfo(np.float32).min, np.float32),
         "scale": np.array(1 / np.sqrt(HID), np.float32), "ax1": np.array([1], np.int64)}
    n = helper.make_node
    nodes = [
        n("Gather", ["word", "input_ids"], ["we"], name="word_embeddings"),
        n("Gather", ["types", "token_type_ids"], ["te"], name="token_type_embeddings"),
        n("Add", ["we", "te"], ["e0"]), n("Add", ["e0", "pos"], ["e1"]),
        n("LayerNormalization", ["e1", "g", "b"], ["h"], axis=-1, epsilon=1e-12, name="ln0"),
        n("MatMul", ["h", "wq"], ["q"]), n("MatMul", ["h", "wk"], ["k"]), n("MatMul", ["h", "wv"], ["v"]),
        n("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), n("MatMul", ["q", "kt"], ["s0"]), n("Mul", ["s0", "scale"], ["s1"]),
        n("Unsqueeze", ["attention_mask", "ax1"], ["m1"]), n("Cast", ["m1"], ["mf"], to=TensorProto.FLOAT),
        n("Sub", ["one", "mf"], ["inv"]), n("Mul", ["inv", "neg"], ["bias"]), n("Add", ["s1", "bias"], ["s2"]),
        n("Softmax", ["s2"], ["p"], axis=-1), n("MatMul", ["p", "v"], ["ctx"]), n("MatMul", ["ctx", "wo"], ["o"]),
        n("Add", ["o", "h"], ["r"]), n("LayerNormalization", ["r", "g", "b"], ["last_hidden_state"], axis=-1,
                                      epsilon=1e-12, name="ln1"),
    ]
    ints = [helper.make_tensor_value_info(x, TensorProto.INT64, [1, SEQ])
            for x in ("input_ids", "attention_mask", "token_type_ids")]
    g = helper.make_graph(nodes, "bert", ints, [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                                                              [1, SEQ, HID])],
                          [numpy_helper.from_array(v, k) for k, v in c.items()])
    return onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def test_domains_are_read_off_the_graph():
    d = input_domains(bert_like())
    assert (d["input_ids"].low, d["input_ids"].high) == (0, VOCAB)
    assert (d["token_type_ids"].low, d["token_type_ids"].high) == (0, 2)
    assert d["attention_mask"].values == (0, 1)
    feeds = random_inputs(input_specs(bert_like()), 0, 4, d)
    assert all(set(np.unique(f["token_type_ids"])) <= {0, 1} and f["input_ids"].max() < VOCAB for f in feeds)
    assert any(len(np.unique(f["attention_mask"])) == 2 for f in feeds)


def test_profile_values_win_and_a_shape_scalar_must_be_given():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    reps = helper.make_tensor_value_info("repeats", TensorProto.INT64, [2])
    g = helper.make_graph([helper.make_node("Tile", ["x", "repeats"], ["y"], name="tile")], "t", [x, reps],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UsageError, match=r"'repeats' decides a shape .*Tile 'tile'.*inputs: \{repeats: \{values"):
        input_domains(model)

    class Given:
        values, range = [1, 2], None

    assert input_domains(model, {"repeats": Given()})["repeats"].values == (1, 2)


def test_bert_like_encoder_builds_and_validates_on_every_target(tmp_path):
    """Before: token_type_ids in 0..9 indexed a 2-row table (exit 70 inside the simplifier's check, even with
    --no-validate), a mask of 0..9 turned the reference NaN. Now every target builds and passes."""
    path = tmp_path / "bert.onnx"
    onnx.save(bert_like(), str(path))
    outcome = api.build(path, api.BuildOptions(target="all", out_dir=tmp_path / "out", latency="off"))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    assert {a.artifact.target for a in outcome.result.artifacts} == {"android", "ios", "ort-mobile"}
    for a in outcome.result.artifacts:
        assert a.numerics.passed, (a.artifact.target, a.numerics.message)
        assert "'token_type_ids' int64[1, 16]: range [0, 2)" in a.numerics.data
        assert "'attention_mask' int64[1, 16]: values [0, 1]" in a.numerics.data


def test_nan_reference_is_named(tmp_path):
    """A model whose reference output is NaN on the validation inputs (Log of N(0, 1)): its own error."""
    g = helper.make_graph([helper.make_node("Log", ["x"], ["y"])], "log",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    path = tmp_path / "log.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(ReferenceNotFinite, match="'y' of the original model is NaN/Inf .*seeded random"):
        api.build(path, api.BuildOptions(target="ort-mobile", out_dir=tmp_path / "out", latency="off"))
