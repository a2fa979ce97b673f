"""Control flow on android (TFLite, run by LiteRT) and ios (CoreML, run by the repo's MIL interpreter): a small
Scan / constant Loop unrolled in the ONNX domain (graph/unroll.py), each checked against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.errors import UnsupportedOp
from edgec.graph.unroll import MAX_UNROLLED_NODES, unroll_control_flow
from tests.coreml import helpers as cm
from tests.tflite.helpers import assert_close

F = TensorProto.FLOAT


def _litert(model: onnx.ModelProto, tmp_path, op: str | None = None):
    """The model lowered to TFLite (without problems; `op` in its histogram once) and opened in LiteRT."""
    from edgec.lower.tflite.convert import convert
    from edgec.runtimes.host_litert import LiteRTRunner

    res = convert(model)
    assert not res.problems, res.problems
    if op:
        assert res.op_histogram.get(op) == 1
    path = tmp_path / "m.tflite"
    path.write_bytes(res.data)
    return LiteRTRunner(path, threads=1)


def _scan_model(steps: int = 5) -> onnx.ModelProto:
    """Scan-9: state s [2]; x [steps, 2] scanned on axis 0 forward, z [2, steps] on axis 1 in reverse; the body
    reads the outer-scope weight w; scan outputs y (axis 1, reversed) and c (axis 0)."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["xt", "w"], ["xw"]),
         helper.make_node("Add", ["s_in", "xw"], ["s1"]),
         helper.make_node("Sub", ["s1", "zt"], ["s_out"]),
         helper.make_node("Tanh", ["s_out"], ["y_t"]),
         helper.make_node("Mul", ["s_out", "zt"], ["c_t"])],
        "body",
        [helper.make_tensor_value_info(n, F, [2]) for n in ("s_in", "xt", "zt")],
        [helper.make_tensor_value_info(n, F, [2]) for n in ("s_out", "y_t", "c_t")])
    scan = helper.make_node("Scan", ["s0", "x", "z"], ["s_final", "y", "c"], name="the_scan", body=body,
                            num_scan_inputs=2, scan_input_axes=[0, 1], scan_input_directions=[0, 1],
                            scan_output_axes=[1, 0], scan_output_directions=[1, 0])
    graph = helper.make_graph(
        [scan, helper.make_node("Relu", ["y"], ["y_relu"])], "g",
        [helper.make_tensor_value_info("s0", F, [2]), helper.make_tensor_value_info("x", F, [steps, 2]),
         helper.make_tensor_value_info("z", F, [2, steps])],
        [helper.make_tensor_value_info(n, F, None) for n in ("s_final", "y_relu", "c")],
        [numpy_helper.from_array(np.array([0.5, -1.5], np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return cm.infer(model)


def _const_loop_model() -> onnx.ModelProto:
    """A `for` Loop with a constant trip count of 4: carried h <- tanh(h * a + i), scan output h."""
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=F),
         helper.make_node("Mul", ["h_in", "a"], ["ha"]),
         helper.make_node("Add", ["ha", "fi"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["h_out"], ["scan_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", F, [3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", F, [3]), helper.make_tensor_value_info("scan_out", F, [3])])
    loop = helper.make_node("Loop", ["trip", "", "h0"], ["h_last", "hs"], name="the_loop", body=body)
    graph = helper.make_graph(
        [loop], "g", [helper.make_tensor_value_info("h0", F, [3]), helper.make_tensor_value_info("a", F, [3])],
        [helper.make_tensor_value_info(n, F, None) for n in ("h_last", "hs")],
        [numpy_helper.from_array(np.array(4, np.int64), "trip")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return cm.infer(model)


def _coreml_close(model, tmp_path, atol=1e-5):
    feeds = cm.feeds_for(model)
    ref = cm.reference(model, feeds)
    art = cm.lower(model, tmp_path)
    got = cm.backend().runner(art, 1).run(feeds)
    for k, v in ref.items():
        assert got[k].shape == v.shape, (k, got[k].shape, v.shape)
        np.testing.assert_allclose(got[k], v, atol=atol, rtol=1e-5, err_msg=k)
    return art


@pytest.mark.parametrize("make", [_scan_model, _const_loop_model], ids=["scan", "const_loop"])
def test_unrolled_matches_ort_on_tflite(make):
    res = assert_close(make(), atol=1e-5, rtol=1e-5)
    assert "WHILE" not in res.op_histogram


@pytest.mark.parametrize("make", [_scan_model, _const_loop_model], ids=["scan", "const_loop"])
def test_unrolled_matches_ort_on_coreml(make, tmp_path):
    _coreml_close(make(), tmp_path)


def test_unroll_renames_per_iteration_and_keeps_outer_reads():
    model, refused = unroll_control_flow(_scan_model(steps=3))
    assert not refused
    ops = [n.op_type for n in model.graph.node]
    assert "Scan" not in ops and ops.count("Tanh") == 3
    outs = [o for n in model.graph.node for o in n.output]
    assert len(outs) == len(set(outs))  # every copy of the body writes its own tensors
    assert sum("w" in n.input for n in model.graph.node) == 3  # the outer-scope weight, read by every copy
    onnx.checker.check_model(model, full_check=True)


def test_too_long_scan_is_refused_with_the_bound():
    steps = MAX_UNROLLED_NODES // 5 + 1  # 5 body nodes
    model = _scan_model(steps=steps)
    from edgec.lower.tflite.backend import TFLiteBackend

    for problems in (TFLiteBackend().unsupported(model), cm.backend().unsupported(model)):
        assert len(problems) == 1, problems
        op, name, why = problems[0]
        assert (op, name) == ("Scan", "the_scan")
        assert f"{steps} times" in why and str(MAX_UNROLLED_NODES) in why and "ort-mobile" in why


def test_too_long_scan_refused_by_lower(tmp_path):
    with pytest.raises(UnsupportedOp, match="bound"):
        cm.lower(_scan_model(steps=MAX_UNROLLED_NODES), tmp_path)


def _if_model() -> onnx.ModelProto:
    """cond = ReduceSum(x) > 0 (a run-time value); the branches read the outer-scope x (through a Conv, so the
    layout pass has something to move), the weight w and the graph input s; two outputs."""
    rng = np.random.default_rng(1)
    then_g = helper.make_graph(
        [helper.make_node("Mul", ["feat", "w"], ["t0"]), helper.make_node("Relu", ["t0"], ["t_out"]),
         helper.make_node("Add", ["s", "s"], ["t_s"])], "then", [],
        [helper.make_tensor_value_info("t_out", F, [1, 4, 3, 3]), helper.make_tensor_value_info("t_s", F, [2])])
    else_g = helper.make_graph(
        [helper.make_node("Sigmoid", ["feat"], ["e_out"]), helper.make_node("Neg", ["s"], ["e_s"])], "else", [],
        [helper.make_tensor_value_info("e_out", F, [1, 4, 3, 3]), helper.make_tensor_value_info("e_s", F, [2])])
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["feat"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y", "ys"], name="the_if", then_branch=then_g, else_branch=else_g),
        helper.make_node("Add", ["y", "feat"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", F, [1, 2, 3, 3]), helper.make_tensor_value_info("s", F, [2])],
        [helper.make_tensor_value_info("out", F, None), helper.make_tensor_value_info("ys", F, None)],
        [numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "k"),
         numpy_helper.from_array(np.array(0, np.float32), "zero"),
         numpy_helper.from_array(rng.standard_normal((1, 4, 1, 1)).astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return cm.infer(model)


def _if_feeds():
    """Two feeds: one takes the then branch, the other the else branch."""
    rng = np.random.default_rng(2)
    x = np.abs(rng.standard_normal((1, 2, 3, 3))).astype(np.float32)
    s = rng.standard_normal(2).astype(np.float32)
    return [{"x": x, "s": s}, {"x": -x, "s": s}]


def test_if_on_runtime_value_tflite(tmp_path):
    from edgec.runtimes.host_ort import OrtRunner

    model = _if_model()
    runner = _litert(model, tmp_path, "IF")
    for feeds in _if_feeds():
        ref = OrtRunner(model).run(feeds)
        got = runner.run(feeds)
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], atol=1e-5, rtol=1e-5, err_msg=k)
    from edgec.lower.tflite.convert import convert

    assert convert(model).data == (tmp_path / "m.tflite").read_bytes()  # deterministic


def test_if_on_runtime_value_coreml(tmp_path):
    """MIL cond, run by the repo's MIL interpreter from the saved package, both branches."""
    model = _if_model()
    art = cm.lower(model, tmp_path)
    assert "cond" in {op.type for op in cm.mil_ops(art.path)}
    runner = cm.backend().runner(art, 1)
    for feeds in _if_feeds():
        ref = cm.reference(model, feeds)
        got = runner.run(feeds)
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], atol=1e-5, rtol=1e-5, err_msg=k)  # an fp32 program


def _runtime_loop_model() -> onnx.ModelProto:
    """A Loop on a run-time trip count and condition: h <- tanh(h * a + i) while sum(h) < limit (both read
    from outer scope: a is a graph input, limit a weight); scan output h, carried h and the step count."""
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=F),
         helper.make_node("Mul", ["h_in", "a"], ["ha"]),
         helper.make_node("Add", ["ha", "fi"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["h_out"]),
         helper.make_node("ReduceSum", ["h_out"], ["total"], keepdims=0),
         helper.make_node("Less", ["total", "limit"], ["cond_out"]),
         helper.make_node("Add", ["n_in", "one"], ["n_out"]),
         helper.make_node("Identity", ["h_out"], ["scan_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", F, [1, 3]), helper.make_tensor_value_info("n_in", F, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", F, [1, 3]), helper.make_tensor_value_info("n_out", F, []),
         helper.make_tensor_value_info("scan_out", F, [1, 3])])
    loop = helper.make_node("Loop", ["trip", "go", "h0", "n0"], ["h_last", "steps", "hs"], name="the_loop", body=body)
    graph = helper.make_graph(
        [loop], "g",
        [helper.make_tensor_value_info("trip", TensorProto.INT64, []),
         helper.make_tensor_value_info("go", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h0", F, [1, 3]), helper.make_tensor_value_info("a", F, [1, 3])],
        [helper.make_tensor_value_info("h_last", F, [1, 3]), helper.make_tensor_value_info("steps", F, []),
         helper.make_tensor_value_info("hs", F, None)],
        [numpy_helper.from_array(np.array(2.5, np.float32), "limit"),
         numpy_helper.from_array(np.array(0, np.float32), "n0"),
         numpy_helper.from_array(np.array(1, np.float32), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _loop_feeds():
    """Stops on the trip count (after 2 steps), on the condition (after 3). Not a zero-step run: its empty scan
    output is a tensor LiteRT cannot return ("Invalid tensor size"), and CoreML has no zero-size tensors."""
    a = np.array([[0.5, -0.25, 1.0]], np.float32)
    h0 = np.array([[0.1, 0.2, -0.3]], np.float32)
    return [{"trip": np.array(2, np.int64), "go": np.array(True), "h0": h0, "a": a},
            {"trip": np.array(50, np.int64), "go": np.array(True), "h0": h0, "a": a}]


def test_loop_on_runtime_values_tflite(tmp_path):
    from edgec.runtimes.host_ort import OrtRunner

    model = _runtime_loop_model()
    runner = _litert(model, tmp_path, "WHILE")
    lengths = []
    for feeds in _loop_feeds():
        ref = OrtRunner(model).run(feeds)
        got = runner.run(feeds)
        lengths.append(ref["hs"].shape[0])
        for k in ref:
            assert got[k].shape == ref[k].shape, (k, got[k].shape, ref[k].shape)
            np.testing.assert_allclose(got[k], ref[k], atol=1e-5, rtol=1e-5, err_msg=k)
    assert lengths == [2, 3]  # each way of stopping was taken


def test_loop_on_runtime_values_coreml(tmp_path):
    """MIL while_loop, run by the repo's MIL interpreter from the saved package."""
    model = _runtime_loop_model()
    art = cm.lower(model, tmp_path)
    assert "while_loop" in {op.type for op in cm.mil_ops(art.path)}
    runner = cm.backend().runner(art, 1)
    for feeds in _loop_feeds():
        ref = cm.reference(model, feeds)
        got = runner.run(feeds)
        for k in ref:
            assert got[k].shape == ref[k].shape, (k, got[k].shape, ref[k].shape)
            np.testing.assert_allclose(got[k], ref[k], atol=1e-5, rtol=1e-5, err_msg=k)  # an fp32 program


def _cascade_model(tail: int = 8) -> onnx.ModelProto:
    """An If on a run-time value whose branches disagree on the output shape ([1, 8] vs [1, 4]: no static shape
    for either target), then a Relu chain and a Shape that all depend on it."""
    branch = lambda k, n, w: helper.make_graph(  # noqa: E731
        [helper.make_node("Slice", ["x", "zero1", n, "one1"], [f"o{k}"])], f"b{k}", [],
        [helper.make_tensor_value_info(f"o{k}", F, [1, w])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["cond"], name="positive"),
             helper.make_node("If", ["cond"], ["y0"], name="pick", then_branch=branch("a", "eight", 8),
                              else_branch=branch("b", "four", 4))]
    for i in range(tail):
        nodes.append(helper.make_node("Relu", [f"y{i}"], [f"y{i + 1}"], name=f"relu{i}"))
    nodes.append(helper.make_node("Shape", [f"y{tail}"], ["shape"], name="shape_of"))
    nodes.append(helper.make_node("Cast", ["shape"], ["shape_f"], name="cast", to=F))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", F, [1, 8])],
        [helper.make_tensor_value_info(f"y{tail}", F, [1, "w"]), helper.make_tensor_value_info("shape_f", F, [2])],
        [numpy_helper.from_array(np.array(0, np.float32), "zero"),
         numpy_helper.from_array(np.array([0], np.int64), "zero1"),
         numpy_helper.from_array(np.array([1], np.int64), "one1"),
         numpy_helper.from_array(np.array([8], np.int64), "eight"),
         numpy_helper.from_array(np.array([4], np.int64), "four")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("target", ["android", "ios"])
def test_refused_if_cascade_prints_roots_and_a_count(target, tmp_path):
    from edgec import api

    path = tmp_path / "m.onnx"
    onnx.save(_cascade_model(), str(path))
    with pytest.raises(UnsupportedOp) as e:
        api.build(path, api.BuildOptions(target=target, out_dir=tmp_path / "out"))
    text = str(e.value)
    assert "'pick'" in text and "more node(s) depend on it" in text, text
    assert not any(f"relu{i}" in text for i in range(8)) and "shape_of" not in text, text
    assert text.count(" node '") == 1, text  # the If alone, not the chain behind it


def _sliding_loop_model() -> onnx.ModelProto:
    """A run-time Loop reading column i of the outer-scope input x [2, 5] as x[:, i:i + 1] (Slice at a run-time
    position, axes [1]): acc <- acc * 0.5 + column; scan output the column."""
    body = helper.make_graph(
        [helper.make_node("Unsqueeze", ["i", "zero1"], ["start"]),
         helper.make_node("Add", ["start", "one1"], ["end"]),
         helper.make_node("Slice", ["x", "start", "end", "axis1"], ["col"]),
         helper.make_node("Mul", ["acc_in", "half"], ["decayed"]),
         helper.make_node("Add", ["decayed", "col"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["col"], ["col_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", F, [2, 1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", F, [2, 1]), helper.make_tensor_value_info("col_out", F, [2, 1])])
    loop = helper.make_node("Loop", ["trip", "", "acc0"], ["acc", "cols"], name="the_loop", body=body)
    graph = helper.make_graph(
        [loop], "g",
        [helper.make_tensor_value_info("trip", TensorProto.INT64, []), helper.make_tensor_value_info("x", F, [2, 5])],
        [helper.make_tensor_value_info("acc", F, [2, 1]), helper.make_tensor_value_info("cols", F, None)],
        [numpy_helper.from_array(np.zeros((2, 1), np.float32), "acc0"),
         numpy_helper.from_array(np.array(0.5, np.float32), "half"),
         numpy_helper.from_array(np.array([0], np.int64), "zero1"),
         numpy_helper.from_array(np.array([1], np.int64), "one1"),
         numpy_helper.from_array(np.array([1], np.int64), "axis1")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_slice_at_runtime_position_in_loop_body_both_targets(tmp_path):
    model = _sliding_loop_model()
    x = np.arange(10, dtype=np.float32).reshape(2, 5) - 3
    runners = [_litert(model, tmp_path), cm.backend().runner(cm.lower(model, tmp_path), 1)]
    for trip in (1, 4, 5):
        feeds = {"trip": np.array(trip, np.int64), "x": x}
        ref = cm.reference(model, feeds)
        assert ref["cols"].shape == (trip, 2, 1)
        for runner in runners:
            got = runner.run(feeds)
            for k in ref:
                np.testing.assert_allclose(got[k], ref[k], atol=1e-6, err_msg=f"{runner.name} {k} trip {trip}")


def test_slice_whose_length_changes_per_iteration_stays_and_is_refused():
    """x[i:] has another length at every iteration: no static shape exists, so it is left to the targets'
    refusal (naming the Slice), never turned into a fixed-length Gather."""
    from edgec.graph.loop_body import static_slices
    from edgec.lower.tflite.backend import TFLiteBackend

    model = _sliding_loop_model()
    body = model.graph.node[0].attribute[0].g
    body.node[2].input[2] = "big"
    model.graph.initializer.append(numpy_helper.from_array(np.array([2**62], np.int64), "big"))
    body.output[2].type.tensor_type.ClearField("shape")
    body.output[1].type.tensor_type.ClearField("shape")
    plain = helper.make_model(helper.make_graph(
        list(body.node), "b", list(body.input) + [helper.make_tensor_value_info("x", F, [2, 5])],
        list(body.output), list(model.graph.initializer)), opset_imports=model.opset_import)
    assert [n.op_type for n in static_slices(plain, "i").graph.node] == [n.op_type for n in plain.graph.node]
    for problems in (TFLiteBackend().unsupported(model), cm.backend().unsupported(model)):
        assert problems and problems[0][:2] == ("Loop", "the_loop"), problems


def test_dynamic_batch_with_control_flow_is_refused():
    from edgec.lower.tflite.convert import convert

    res = convert(_if_model(), dynamic_batch=True)
    assert res.problems and res.problems[0][:2] == ("If", "the_if") and "fixed batch" in res.problems[0][2]


@pytest.mark.parametrize("op", ["If", "Loop", "Scan"])
def test_malformed_control_flow_node_is_refused_not_a_crash(op):
    from edgec.lower.tflite.backend import TFLiteBackend

    node = helper.make_node(op, ["x"], ["y"], name="bad")  # no subgraph attribute
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", F, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for problems in (TFLiteBackend().unsupported(model), cm.backend().unsupported(model)):
        assert [p[:2] for p in problems] == [(op, "bad")], problems
