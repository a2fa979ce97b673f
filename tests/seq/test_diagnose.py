"""Unsupported-op errors name root causes (refused nodes whose inputs are all supported), count the nodes that
depend on them, and point an If/Shape cascade at the input that would fold it."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from edgec import api
from edgec.errors import UnsupportedOp, UsageError
from edgec.graph.diagnose import explain


def _cascade_model(tail: int = 6):
    """use16k (bool scalar) -> If -> Relu chain: an If on a run-time flag feeding everything after it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    flag = helper.make_tensor_value_info("use16k", TensorProto.BOOL, [])
    branch = lambda k: helper.make_graph(  # noqa: E731
        [helper.make_node("Mul", ["x", k], [f"o{k}"])], f"b{k}", [],
        [helper.make_tensor_value_info(f"o{k}", TensorProto.FLOAT, [1, 8])])
    nodes = [helper.make_node("If", ["use16k"], ["y0"], name="pick_rate", then_branch=branch("two"),
                              else_branch=branch("three"))]
    for i in range(tail):
        nodes.append(helper.make_node("Relu", [f"y{i}"], [f"y{i + 1}"], name=f"relu{i}"))
    inits = [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
             helper.make_tensor("three", TensorProto.FLOAT, [], [3.0])]
    out = helper.make_tensor_value_info(f"y{tail}", TensorProto.FLOAT, [1, 8])
    return helper.make_model(helper.make_graph(nodes, "g", [x, flag], [out], inits),
                             opset_imports=[helper.make_opsetid("", 17)])


def test_roots_dependents_and_hint():
    model = _cascade_model()
    problems = [("If", "pick_rate", "no lowering for this op")] + [
        ("Relu", f"relu{i}", "input has no static shape") for i in range(6)]
    info = explain(model, problems)
    assert info["roots"] == problems[:1] and info["dependents"] == 6
    (hint,) = info["hints"]
    assert "'use16k'" in hint and "--input-value use16k=" in hint
    err = UnsupportedOp("android", problems, **info)
    text = str(err)
    assert "6 more node(s) depend on it" in text and "relu3" not in text and "pick_rate" in text
    assert err.problems == problems  # tools still get every node


def test_unrelated_refusals_are_all_roots():
    model = _cascade_model(2)
    problems = [("Relu", "relu0", "why a"), ("Relu", "relu1", "why b")]
    info = explain(model, problems)
    assert info["dependents"] == 1 and info["roots"] == problems[:1]
    assert info["hints"] == []  # a Relu is not folded by a fixed input


@pytest.mark.parametrize("target", ["android", "ios"])
def test_build_error_names_the_if_and_suggests_input_value(target, tmp_path):
    path = tmp_path / "m.onnx"
    import onnx

    onnx.save(_cascade_model(), str(path))
    # the first check to meet the If says so: validation's input domains (a random value would check another
    # branch than the app runs) or the target's refusal; either names the If and suggests --input-value
    with pytest.raises((UnsupportedOp, UsageError)) as e:
        api.build(path, api.BuildOptions(target=target, out_dir=tmp_path / "out"))
    assert "pick_rate" in str(e.value) and "If" in str(e.value) and "--input-value use16k=VALUE" in str(e.value)
    outcome = api.build(path, api.BuildOptions(target=target, out_dir=tmp_path / "out2",
                                               input_values=["use16k=1"]))
    assert outcome.ok
