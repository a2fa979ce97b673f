"""Names, dtypes and graph plumbing: what coremltools would otherwise change silently."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.lower.coreml.names import NameTable, sanitize
from tests.coreml.helpers import HAVE_RUNTIME, backend, infer, lower, mil_ops, mil_spec, reference


def test_sanitize_matches_mil_rules():
    assert sanitize("gpu_0/data_0") == "gpu_0_data_0"
    assert sanitize("1x") == "v_1x"
    assert sanitize("_hidden") == "v__hidden"
    assert sanitize("fp16") == "fp16_"
    assert sanitize("") == "v"
    table = NameTable()
    assert [table.reserve(n) for n in ("a/b", "a.b", "a_b", "a/b")] == ["a_b", "a_b_1", "a_b_2", "a_b"]


def _awkward_model() -> onnx.ModelProto:
    """Names coremltools would rename, an int64 input, an output that is an alias, a Constant output."""
    nodes = [
        helper.make_node("Relu", ["in/put:0"], ["1st.out"], name="relu/0"),
        helper.make_node("Identity", ["1st.out"], ["alias"], name="id"),
        helper.make_node("Cast", ["idx"], ["idx_f"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Add", ["1st.out", "idx_f"], ["fp32"], name="add"),
        helper.make_node("Constant", [], ["table"], name="const",
                         value=numpy_helper.from_array(np.arange(6, dtype=np.int64).reshape(2, 3))),
        helper.make_node("Gather", ["table", "idx"], ["picked"], name="gather", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "awkward",
        [helper.make_tensor_value_info("in/put:0", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("idx", TensorProto.INT64, [2, 3])],
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in ("1st.out", "alias", "fp32", "picked", "table")],
    )
    return infer(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_name_map_is_what_the_package_says(tmp_path):
    art = lower(_awkward_model(), tmp_path)
    nm = art.details["name_map"]
    assert nm["inputs"] == {"in/put:0": "in_put_0", "idx": "idx"}
    assert nm["outputs"] == {"1st.out": "v_1st_out", "alias": "alias", "fp32": "fp32_", "picked": "picked", "table": "table"}
    assert nm["input_dtypes"]["idx"] == "int64" and nm["output_dtypes"]["picked"] == "int64"
    spec = mil_spec(art.path)
    assert [i.name for i in spec.description.input] == ["in_put_0", "idx"]
    assert [o.name for o in spec.description.output] == list(nm["outputs"].values())
    # CoreML has no int64: the integer input is int32 on the CoreML side
    assert spec.description.input[1].type.multiArrayType.dataType == spec.description.input[1].type.multiArrayType.INT32
    assert "ONNX input 'in/put:0'" in spec.description.input[0].shortDescription


@pytest.mark.skipif(not HAVE_RUNTIME, reason="needs a CoreML runtime or the MIL interpreter")
def test_runner_speaks_onnx_names_and_dtypes(tmp_path):
    model = _awkward_model()
    art = lower(model, tmp_path)
    feeds = {"in/put:0": np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32),
             "idx": np.array([[0, 1, 2], [2, 1, 0]], np.int64)}
    got = backend().runner(art, 1).run(feeds)
    want = reference(model, feeds)
    assert set(got) == set(want)
    for k in want:
        assert got[k].dtype == want[k].dtype
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-6)


def test_mil_op_names_come_from_onnx_tensors(tmp_path):
    art = lower(_awkward_model(), tmp_path)
    outputs = {o.outputs[0].name for o in mil_ops(art.path)}
    assert {"v_1st_out", "idx_f", "picked"} <= outputs


@pytest.mark.skipif(not HAVE_RUNTIME, reason="needs a CoreML runtime or the MIL interpreter")
def test_runner_says_whether_its_time_is_coreml_latency(tmp_path):
    import sys

    runner = backend().runner(lower(_awkward_model(), tmp_path), 1)
    # the numpy interpreter's wall time is not CoreML latency; coremltools predict on a Mac is
    assert runner.latency_meaningful is (sys.platform == "darwin")
    assert (runner.name == "mil-interpreter") is (sys.platform != "darwin")
