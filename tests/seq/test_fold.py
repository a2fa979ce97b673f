"""edgec's own folding: an If on a fixed input is inlined before anything type-checks the unused branch; shape
arithmetic folds; an unsorted graph is sorted; the report says which folding produced the graph."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import api
from edgec.graph.fold import fold


def _vad_like(path):
    """x [1, N] (N dynamic) and sr: sr == 16000 -> x @ W16 (512 x 4); else x[:, :256] @ W8 (256 x 4) written as
    x @ W8 -- a branch that only type-checks while N is unknown (once N = 512 it is a shape error, like the
    8 kHz branch of a real VAD). Shape(x) feeds a ConstantOfShape-based bias too."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "N"])
    sr = helper.make_tensor_value_info("sr", TensorProto.INT64, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "w16"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])])
    else_g = helper.make_graph([helper.make_node("MatMul", ["x", "w8"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 4])])
    nodes = [
        helper.make_node("Equal", ["sr", "rate"], ["is16k"]),
        helper.make_node("If", ["is16k"], ["feat"], name="pick", then_branch=then_g, else_branch=else_g),
        helper.make_node("Shape", ["feat"], ["fs"]),
        helper.make_node("ConstantOfShape", ["fs"], ["ones"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
        helper.make_node("Add", ["feat", "ones"], ["y0"]),
        helper.make_node("Tanh", ["y0"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array(16000, np.int64), "rate"),
             numpy_helper.from_array(rng.standard_normal((512, 4)).astype(np.float32) * 0.05, "w16"),
             numpy_helper.from_array(rng.standard_normal((256, 4)).astype(np.float32) * 0.05, "w8")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x, sr], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_fold_inlines_known_if_and_folds_shape_arithmetic(tmp_path):
    model = onnx.load(str(_vad_like(tmp_path / "m.onnx")))
    from edgec.graph.values import fix_input_values
    from edgec.graph.shapes import fix_input_shapes

    fix_input_values(model, {"sr": 16000})
    fix_input_shapes(model, {"x": [1, 512]})
    done = fold(model)
    assert done["If inlined"] == 1 and done["folded"] >= 3  # Equal, Shape, ConstantOfShape
    ops = [n.op_type for n in model.graph.node]
    assert "If" not in ops and "Shape" not in ops and "ConstantOfShape" not in ops and "MatMul" in ops
    assert "w8" not in {t.name for t in model.graph.initializer}  # the unused branch's weights are gone


def test_fold_sorts_an_unsorted_graph():
    a = helper.make_node("Relu", ["t"], ["y"])
    b = helper.make_node("Neg", ["x"], ["t"])
    g = helper.make_graph([a, b], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert fold(model)["sorted"] == 1
    assert [n.op_type for n in model.graph.node] == ["Neg", "Relu"]


@pytest.mark.parametrize("target", ["ort-mobile", "android", "ios"])
def test_fixed_sample_rate_builds_where_the_unused_branch_cannot_type_check(target, tmp_path):
    path = _vad_like(tmp_path / "m.onnx")
    out = tmp_path / "out"
    outcome = api.build(path, api.BuildOptions(target=target, out_dir=out, input_shapes=["x=1,512"],
                                               input_values=["sr=16000"]))
    assert outcome.ok, outcome.result.artifacts[0].numerics
    art = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    assert any("If inlined x1" in n for n in art["notes"]), art["notes"]
    (m,) = art["numerics"]["outputs"].values()
    assert m["cosine"] > 0.9999


def _loop_model(path, trip=4):
    """for k in range(trip): acc = acc * 0.5 + x * k; scan out tanh(acc)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["x", "kf"], ["xk"]),
         helper.make_node("Mul", ["acc_in", "half"], ["acc_h"]),
         helper.make_node("Add", ["acc_h", "xk"], ["acc_out"]),
         helper.make_node("Tanh", ["acc_out"], ["scan"])],
        "body",
        [helper.make_tensor_value_info("k", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1, 3]),
         helper.make_tensor_value_info("scan", TensorProto.FLOAT, [1, 3])])
    nodes = [helper.make_node("Loop", ["M", "", "zero"], ["acc", "scans"], name="loop", body=body)]
    inits = [numpy_helper.from_array(np.array(trip, np.int64), "M"),
             numpy_helper.from_array(np.zeros((1, 3), np.float32), "zero"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    outs = [helper.make_tensor_value_info("acc", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("scans", TensorProto.FLOAT, [trip, 1, 3])]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], outs, inits),
                                opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_constant_loop_is_unrolled(tmp_path):
    model = onnx.load(str(_loop_model(tmp_path / "l.onnx")))
    assert fold(model)["Loop unrolled"] == 1
    assert "Loop" not in {n.op_type for n in model.graph.node}
    import onnxruntime as ort

    x = np.array([[0.3, -1.0, 2.0]], np.float32)
    ref = ort.InferenceSession(str(tmp_path / "l.onnx")).run(None, {"x": x})
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("target", ["android", "ios"])
def test_constant_loop_builds(target, tmp_path):
    outcome = api.build(_loop_model(tmp_path / "l.onnx"), api.BuildOptions(target=target, out_dir=tmp_path / "o"))
    assert outcome.ok, outcome.result.artifacts[0].numerics
