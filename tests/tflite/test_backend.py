"""TFLiteBackend through the Backend protocol: artifact, notes, runner with ONNX names, fp16, errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgec.artifact import LowerContext
from edgec.config.loader import load_profile, load_target
from edgec.errors import LoweringError, UnsupportedOp
from edgec.prepare import prepare
from edgec.lower.backend import get_backend
from edgec.samples import randomized
from tests.tflite.helpers import chain, cosine, run_both


def _ctx(tmp_path, precision="fp32", name="m"):
    out = tmp_path / f"stage-{precision}"
    out.mkdir()
    return LowerContext(target=load_target("android"), profile=load_profile("pixel-8"), model_name=name,
                        staging_dir=out, precision=precision)


def _net():
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["input.1", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["p", "w2"], ["feat:0"])]
    consts = {"w": rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "lo": np.array(0, np.float32),
              "hi": np.array(6, np.float32), "w2": rng.standard_normal((8, 16, 1, 1)).astype(np.float32)}
    return chain(nodes, {"input.1": [1, 3, 20, 20]}, ["feat:0"], consts)


def test_lower_and_run_with_onnx_names(tmp_path):
    be = get_backend("tflite")
    model = _net()
    art = be.lower(model, _ctx(tmp_path))
    assert art.path.name == "m.tflite" and art.format == "tflite" and art.path.exists()
    assert any("XNNPACK took" in n for n in art.notes)
    assert art.details["ops"]["CONV_2D"] == 2 and "RELU6" not in art.details["ops"]  # Clip(0,6) fused as RELU6
    assert art.details["xnnpack"]["cpu"] == {}  # MaxPool's pad after RELU6 is a zero PAD, not PADV2
    runner = be.runner(art, threads=2)
    assert runner.name == "litert"
    x = np.random.default_rng(0).standard_normal((1, 3, 20, 20)).astype(np.float32)
    got = runner.run({"input.1": x})
    ref, _, _ = run_both(model)
    assert list(got) == ["feat:0"] and got["feat:0"].shape == (1, 8, 5, 5)  # NCHW out
    import onnxruntime as ort
    exp = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input.1": x})[0]
    np.testing.assert_allclose(got["feat:0"], exp, atol=1e-4, rtol=1e-4)
    assert "Conv" in be.supported_ops() and be.unsupported(model) == []


def test_unsupported_raises_with_every_node(tmp_path):
    nodes = [helper.make_node("Mish", ["x"], ["a"], name="m1"), helper.make_node("Mish", ["a"], ["y"], name="m2")]
    model = chain(nodes, {"x": [1, 4]}, ["y"], opset=18)
    with pytest.raises(UnsupportedOp) as e:
        get_backend("tflite").lower(model, _ctx(tmp_path))
    assert [p[1] for p in e.value.problems] == ["m1", "m2"]


def test_int8_asked_of_a_float_graph_is_an_explicit_error(tmp_path):
    """int8 comes from the quantize stage's QDQ graph; a float graph labelled int8 must not ship as float."""
    with pytest.raises(LoweringError, match="(?i)q.*dq|quantiz"):
        get_backend("tflite").lower(_net(), _ctx(tmp_path, "int8"))


def test_fp16_weights_equal_rounded_reference(tmp_path):
    """fp16 = weights stored as float16 + DEQUANTIZE: LiteRT must equal ORT on the model with its weights
    rounded to float16 (so the only difference from fp32 is the rounding), at about half the size."""
    path = randomized("squeezenet")
    m = onnx.load(path)
    prepared = prepare(m, {m.graph.input[0].name: [1, 3, 224, 224]}, str(path)).model
    be = get_backend("tflite")
    art32 = be.lower(prepared, _ctx(tmp_path, "fp32", "sq"))
    art16 = be.lower(prepared, _ctx(tmp_path, "fp16", "sq"))
    assert art16.path.stat().st_size < 0.55 * art32.path.stat().st_size
    assert art16.details["ops"]["DEQUANTIZE"] > 0
    rounded = onnx.ModelProto()
    rounded.CopyFrom(prepared)
    for t in rounded.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32 and a.size >= 16:
            t.CopyFrom(numpy_helper.from_array(a.astype(np.float16).astype(np.float32), t.name))
    x = {m.graph.input[0].name: np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)}
    import onnxruntime as ort
    exp = ort.InferenceSession(rounded.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
    got = list(be.runner(art16, 2).run(x).values())[0]
    assert cosine(exp, got) > 0.99999


def test_xnnpack_coverage_names_cpu_ops(tmp_path):
    """A MaxPool whose input may be negative keeps the lowest-float PADV2, which XNNPACK does not take."""
    from edgec.runtimes.host_litert import xnnpack_coverage

    nodes = [helper.make_node("Neg", ["x"], ["n"]),
             helper.make_node("MaxPool", ["n"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("LRN", ["p"], ["y"], size=3)]
    art = get_backend("tflite").lower(chain(nodes, {"x": [1, 4, 10, 10]}, ["y"]), _ctx(tmp_path))
    cov = xnnpack_coverage(art.path)
    assert cov["cpu"] == {"LOCAL_RESPONSE_NORMALIZATION": 1, "PADV2": 1}
    assert cov["xnnpack"] == {"MAX_POOL_2D": 1, "NEG": 1, "TRANSPOSE": 2}
    assert any("PADV2 x1" in n for n in art.notes)


def test_nhwc_io_layout_drops_boundary_transposes(tmp_path):
    """profile tflite.io_layout: nhwc -> channels-last model inputs/outputs, no TRANSPOSE in a conv net; the
    runner still takes/returns ONNX layout, so validation compares like with like."""
    from edgec.config.models import TFLiteSpec
    from edgec.runtimes.host_litert import interpreter

    ctx = _ctx(tmp_path)
    ctx = LowerContext(target=ctx.target, profile=ctx.profile.model_copy(update={"tflite": TFLiteSpec(io_layout="nhwc")}),
                       model_name="m", staging_dir=ctx.staging_dir)
    be = get_backend("tflite")
    model = _net()
    art = be.lower(model, ctx)
    assert "TRANSPOSE" not in art.details["ops"] and art.details["io_layout"] == {"input.1": "NHWC", "feat:0": "NHWC"}
    sig = interpreter(art.path).get_signature_runner("serving_default")
    assert list(sig.get_input_details()["input.1"]["shape"]) == [1, 20, 20, 3]
    assert list(sig.get_output_details()["feat:0"]["shape"]) == [1, 5, 5, 8]
    x = np.random.default_rng(0).standard_normal((1, 3, 20, 20)).astype(np.float32)
    import onnxruntime as ort
    exp = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input.1": x})[0]
    np.testing.assert_allclose(be.runner(art, 1).run({"input.1": x})["feat:0"], exp, atol=1e-4, rtol=1e-4)
    # `edgec validate` rebuilds the Artifact without details: the layout travels in the file's metadata
    from edgec.artifact import Artifact
    bare = Artifact(target="android", profile="pixel-8", format="tflite", path=art.path, precision="unknown")
    np.testing.assert_allclose(be.runner(bare, 1).run({"input.1": x})["feat:0"], exp, atol=1e-4, rtol=1e-4)
