"""`edgec check` runs the build's preparation, `targets --ops` is one op x target table, and both read the
versions the targets declare."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec.cli import app


def _detector(path):
    """YOLO-style head on a dynamic input: the reshape target is computed from Shape at run time, so without
    fixed input shapes a Shape -> Gather -> Concat chain (and everything after it) has no static shape."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.1, (6, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["feat"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv"),
        helper.make_node("Sigmoid", ["feat"], ["act"], name="act"),
        helper.make_node("Shape", ["act"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0, name="batch_dim"),
        helper.make_node("Concat", ["n", "six", "minus1"], ["target"], axis=0, name="target"),
        helper.make_node("Reshape", ["act", "target"], ["flat"], name="flatten"),
        helper.make_node("Transpose", ["flat"], ["boxes"], perm=[0, 2, 1], name="to_boxes"),
    ]
    inits = [w, numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([6], np.int64), "six"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    graph = helper.make_graph(
        nodes, "det", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", None, 6])], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_check_prepares_the_graph_like_build(tmp_path, cli):
    model = _detector(tmp_path / "det.onnx")
    r = cli.invoke(app, ["check", str(model), "--input-shape", "images=1,3,64,64"])
    assert r.exit_code == 0, r.output
    assert "[batch, 3, height, width]" in r.output  # named dims are text, not Rich markup
    rows = {ln.split("│")[1].strip(): ln for ln in r.output.splitlines() if ln.count("│") >= 4}
    for t in ("android", "ios", "ort-mobile"):
        assert "yes" in rows[t], r.output  # onnxsim folded the Shape chain once the input is fixed

    data = json.loads(cli.invoke(app, ["check", str(model), "--json"]).output)
    assert data["notes"] and "input" in data["notes"][0]  # dynamic input left unfixed: checked as given
    ios = data["support"]["ios"]
    assert ios and data["dependents"]["ios"] < len(ios)  # the root causes are listed before what they feed
    # the dynamic input is the root cause; the Conv, Shape, Reshape... it feeds follow, counted as dependents
    assert ios[0] == {"op": "graph input", "node": "images", "why": ios[0]["why"]}
    assert data["dependents"]["ios"] == len(ios) - 1
    r = cli.invoke(app, ["check", str(model)])
    assert "more depend on them" in r.output


def test_check_target_exits_6_when_it_cannot_take_the_model(tmp_path, cli):
    # Det: no CoreML lowering (ORT runs it)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="det")], "g", [x], [y])
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    assert cli.invoke(app, ["check", str(path), "--target", "ios"]).exit_code == 6
    assert cli.invoke(app, ["check", str(path), "--target", "ort-mobile"]).exit_code == 0
    assert cli.invoke(app, ["check", str(path)]).exit_code == 0  # a report over all targets, not a gate


def test_check_counts_weights_stored_as_constant_nodes(tmp_path, cli):
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    nodes = [helper.make_node("Constant", [], ["w"], value=w), helper.make_node("MatMul", ["x", "w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "const.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    data = json.loads(cli.invoke(app, ["check", str(path), "--json"]).output)
    assert data["parameters"] == 16


def test_targets_ops_is_one_table_with_the_declared_ort_version(cli):
    r = cli.invoke(app, ["targets", "--ops"])
    assert r.exit_code == 0, r.output
    header = next(ln for ln in r.output.splitlines() if "op" in ln and "android" in ln and "ort-mobile" in ln)
    assert "ios" in header and "conditions" in header
    data = {t["name"]: t for t in json.loads(cli.invoke(app, ["targets", "--ops", "--json"]).output)}
    ort = data["ort-mobile"]
    assert ort["runtime_version"] == "1.20" and "Conv" in ort["ops"] and "Col2Im" in ort["ops"]  # opset 18
    # opset 23 ops (the installed onnx/onnxruntime have them) are not in ORT Mobile 1.20's opset 21
    assert "Attention" not in ort["ops"] and "RotaryEmbedding" not in ort["ops"]
    assert not any(op.startswith("int8.") for op in data["android"]["ops"])
