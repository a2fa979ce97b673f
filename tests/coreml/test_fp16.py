"""fp16 safety: ops touching tensors beyond the fp16 range stay fp32, and the decision is recorded."""

from __future__ import annotations

import numpy as np
import pytest
from coremltools.proto import MIL_pb2
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import conv_model
from tests.coreml.helpers import HAVE_RUNTIME, backend, cosine, infer, lower, mil_ops, reference


def _hot_model():
    """conv -> *1e6 (out of fp16 range) -> relu -> *1e-6 -> conv: only the middle must stay fp32."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(np.array(1e6, np.float32), "big"),
             numpy_helper.from_array(np.array(1e-6, np.float32), "small")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c1", "big"], ["huge"], name="blow_up"),
             helper.make_node("Relu", ["huge"], ["huge_relu"], name="relu"),
             helper.make_node("Mul", ["huge_relu", "small"], ["back"], name="shrink"),
             helper.make_node("Conv", ["back", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "hot", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=inits)
    return infer(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _dtypes(path) -> dict[str, int]:
    return {o.outputs[0].name: o.outputs[0].type.tensorType.dataType for o in mil_ops(path) if o.type != "const"}


def test_hot_tensors_keep_their_ops_in_fp32(tmp_path):
    art = lower(_hot_model(), tmp_path, precision="fp16")
    assert set(art.details["fp16_overflow_tensors"]) == {"huge", "huge_relu"}
    kept = set(art.details["fp32_kept_ops"])
    # producers and readers of the hot tensors (coremltools fuses conv1 and the *1e6 into one conv "huge")
    assert kept == {"huge", "huge_relu", "back"}
    types = _dtypes(art.path)
    assert types["huge_relu"] == MIL_pb2.FLOAT32
    assert types["y_cast_fp16"] == MIL_pb2.FLOAT16  # the last conv reads a tame tensor: fp16
    note = next(n for n in art.notes if n.startswith("fp16 overflow guard"))
    assert "2 of" in note and "kept in fp32" in note


def test_no_hot_tensors_means_all_fp16(tmp_path):
    art = lower(conv_model(), tmp_path, precision="fp16")
    assert art.details["fp32_kept_ops"] == [] and art.details["fp16_overflow_tensors"] == {}
    assert any("every op runs in fp16" in n for n in art.notes)


def test_fp32_build_does_not_probe(tmp_path):
    art = lower(_hot_model(), tmp_path, precision="fp32")
    assert art.details["fp16_overflow_tensors"] == {}
    assert not any("overflow" in n for n in art.notes)


@pytest.mark.skipif(not HAVE_RUNTIME, reason="needs a CoreML runtime or the MIL interpreter")
def test_guarded_fp16_build_is_finite_and_close(tmp_path):
    model = _hot_model()
    art = lower(model, tmp_path, precision="fp16")
    x = {"x": np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    got = backend().runner(art, 1).run(x)["y"]
    assert np.all(np.isfinite(got))
    assert cosine(got, reference(model, x)["y"]) > 0.999


def _stock_squeezenet():
    """light_squeezenet.onnx as the onnx package ships it (every weight 0.02): activations grow to ~1e10."""
    import os

    import onnx

    from edgec.prepare import prepare

    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_squeezenet.onnx")
    return prepare(onnx.load(path), {}, "light_squeezenet").model


@pytest.mark.skipif(not HAVE_RUNTIME, reason="needs a CoreML runtime or the MIL interpreter")
def test_stock_squeezenet_fp16_is_finite_and_matches(tmp_path):
    """Issue 17: the guard kept the hot ONNX tensors' ops in fp32, but the opset-9 Softmax's reshaped input (a var
    named after the output) stayed fp16 and overflowed to inf. The MIL-level probe finds such intermediates."""
    from edgec.graph.inputs import input_specs, random_inputs

    model = _stock_squeezenet()
    art = lower(model, tmp_path, precision="fp16")
    assert art.details["compute_precision"] == "fp16" and art.details["fp32_kept_ops"]
    runner = backend().runner(art, 1)
    for feed in random_inputs(input_specs(model), seed=0, samples=3):
        got, want = runner.run(feed), reference(model, feed)
        for name, ref in want.items():
            assert np.all(np.isfinite(got[name])), name
            assert cosine(got[name], ref) > 0.999, name


def test_composed_intermediates_are_guarded(tmp_path):
    """A var a lowering composes (Softmax opset < 13 reshapes its input under the output's name) reading a hot
    tensor stays fp32 although no ONNX tensor has its name."""
    big = numpy_helper.from_array(np.array(1e6, np.float32), "big")
    nodes = [helper.make_node("Mul", ["x", "big"], ["huge"], name="blow_up"),
             helper.make_node("Softmax", ["huge"], ["y"], name="sm", axis=1)]
    graph = helper.make_graph(nodes, "sm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])], initializer=[big])
    model = infer(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]))
    art = lower(model, tmp_path, precision="fp16")
    types = _dtypes(art.path)
    assert types["y_flat"] == types["y_inner"] == MIL_pb2.FLOAT32  # the softmax itself and its reshaped input
    if HAVE_RUNTIME:
        x = {"x": np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32) * 1e-3}
        got = backend().runner(art, 1).run(x)["y"]
        assert np.all(np.isfinite(got)) and cosine(got, reference(model, x)["y"]) > 0.999
