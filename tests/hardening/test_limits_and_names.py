"""Issue 21, the exit-70 and false-pass cases: huge dims, names that are not UTF-8, zero-sized dims, the PP-OCRv4
detector in fp16 for ORT Mobile, and one target's internal error in a --target all build."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import api
from edgec.errors import InternalError, ModelLoadError, ShapeError
from edgec.graph.load import load_model_renamed
from tests.hardening.models import attention, cnn
from tests.hardening.util import assert_one_whole_build, edgec

HUGE = 1 << 40


def _save(model, path):
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("make", [lambda: cnn((1, 3, HUGE, 16)), lambda: attention(seq=HUGE)], ids=["cnn", "attention"])
def test_huge_input_dim_is_a_shape_error_before_anything_allocates(make, tmp_path):
    # main: MemoryError "Unable to allocate 64.0 TiB" inside numpy, exit 70, and an empty --out left behind
    model = tmp_path / "huge.onnx"
    onnx.save(make(), str(model))
    out = tmp_path / "out"
    r = edgec("build", model, "--target", "all", "--out", out)
    assert r.returncode == ShapeError.exit_code, r.stderr
    assert "'x' of shape" in r.stderr and str(HUGE) in r.stderr and "TiB" in r.stderr
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr
    assert not out.exists()  # a failed build leaves no folder it created


def test_huge_intermediate_is_caught_from_inferred_shapes(tmp_path):
    # a small input tiled to 2**40 elements: only shape inference knows, before onnxsim folds or ORT runs it
    g = helper.make_graph(
        [helper.make_node("Tile", ["x", "reps"], ["t"], name="tile"), helper.make_node("Relu", ["t"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b"])],
        [numpy_helper.from_array(np.array([1 << 20, 1 << 18], np.int64), "reps")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    with pytest.raises(ShapeError, match=r"intermediate tensor 't' of shape \[1048576, 1048576\]"):
        api.build(_save(m, tmp_path / "tile.onnx"), api.BuildOptions(target="ort-mobile", out_dir=tmp_path / "o",
                                                                    validate=False))
    assert not (tmp_path / "o").exists()


def test_initializer_dims_over_the_limit_and_short_raw_data(tmp_path):
    m = cnn()
    w = m.graph.initializer[0]
    w.ClearField("dims")
    w.dims.extend([HUGE, 3, 3, 3])
    with pytest.raises(ShapeError, match="initializer 'w1'"):
        load_model_renamed(_save(m, tmp_path / "big.onnx"))
    m = cnn()
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:10]
    with pytest.raises(ModelLoadError, match="initializer 'w1' has 10 bytes of data"):
        load_model_renamed(_save(m, tmp_path / "short.onnx"))


def _bad_utf8(model: onnx.ModelProto, name: str, raw: bytes) -> bytes:
    """The serialized model with every occurrence of the (unique, length-preserving) name `name` as `raw`."""
    data = model.SerializeToString()
    assert len(raw) == len(name) and data.count(name.encode()) >= 1
    return data.replace(name.encode(), raw)


def test_names_that_are_not_utf8_are_renamed_with_the_map_in_the_manifest(tmp_path):
    # main: UnicodeDecodeError (exit 70) when a backend copies the name
    m = cnn()
    for n in m.graph.node:  # a tensor name that occurs only where it is a name
        n.input[:] = ["relu_tensor" if i == "r1" else i for i in n.input]
        n.output[:] = ["relu_tensor" if o == "r1" else o for o in n.output]
    path = tmp_path / "bad.onnx"
    path.write_bytes(_bad_utf8(m, "relu_tensor", b"relu\xff_tens\xc3"))
    out = tmp_path / "out"
    r = edgec("build", path, "--target", "all", "--out", out, "--latency", "off")
    assert r.returncode == 0, r.stderr
    manifest = assert_one_whole_build(out)
    assert manifest["model"]["renamed"] == {"relu\\xff_tens\\xc3": "relu\\xff_tens\\xc3"}
    assert {a["target"] for a in manifest["artifacts"]} == {"ios", "android", "ort-mobile"}
    assert all(a["numerics"]["passed"] for a in manifest["artifacts"])


def test_renamed_input_keeps_clear_of_existing_names(tmp_path):
    m = cnn()
    m.graph.input[0].name = "X"
    for n in m.graph.node:
        n.input[:] = ["X" if i == "x" else i for i in n.input]
    m.graph.node[1].output[0] = "\\xff"  # an existing name equal to the escaped spelling of the bad one
    m.graph.node[2].input[0] = "\\xff"
    data = m.SerializeToString().replace(b"\n\x01X", b"\n\x01\xff").replace(b"\x12\x01X", b"\x12\x01\xff")
    (tmp_path / "m.onnx").write_bytes(data)
    model, renamed = load_model_renamed(tmp_path / "m.onnx")
    assert renamed == {"\\xff": "\\xff_1"}
    assert model.graph.input[0].name == "\\xff_1" and model.graph.node[0].input[0] == "\\xff_1"


def test_op_type_that_is_not_utf8_is_refused_clearly(tmp_path):
    path = tmp_path / "op.onnx"
    path.write_bytes(_bad_utf8(cnn(), "Flatten", b"Fl\xfftten"))
    r = edgec("build", path, "--target", "android", "--out", tmp_path / "o")
    assert r.returncode == ModelLoadError.exit_code and "not valid UTF-8" in r.stderr, r.stderr


def test_zero_sized_dim_is_a_shape_error_unless_asked_and_then_nothing_to_compare(tmp_path):
    # main: built for android and ort-mobile and "passed" numerics on empty tensors
    path = _save(cnn((0, 3, 16, 16)), tmp_path / "zero.onnx")
    r = edgec("build", path, "--target", "android", "--out", tmp_path / "a")
    assert r.returncode == ShapeError.exit_code and "zero-sized dim" in r.stderr and "--input-shape x=0" in r.stderr
    assert not (tmp_path / "a").exists()
    outcome = api.build(path, api.BuildOptions(target="android", out_dir=tmp_path / "b", input_shapes=["x=0,3,16,16"]))
    a = outcome.result.artifacts[0]
    assert a.numerics is None and a.artifact.details["numerics"].startswith("nothing to compare")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["artifacts"][0]["numerics"] is None
    assert "nothing to compare" in (tmp_path / "b" / "report.md").read_text()


def test_fp16_conversion_keeps_initializer_types_that_value_info_also_names():
    # the PP-OCRv4 detector's cause in small: paddle2onnx lists Resize's `scales` initializer in value_info; the
    # converter retyped that entry fp16 while the initializer (read only by the blocked Resize) stayed fp32, and
    # shape inference refused the model ("Inferred elem type differs ... (1) vs (10)")
    from edgec.quantize.fp16 import to_fp16

    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Resize", ["r", "", "scales"], ["y"], name="resize", mode="nearest")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])], [scales],
        value_info=[helper.make_tensor_value_info("scales", TensorProto.FLOAT, [4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    out, _ = to_fp16(m, [], [])
    onnx.shape_inference.infer_shapes(out, strict_mode=True)  # raised InferenceError before the fix


def test_ppocr_det_fp16_for_ort_mobile_builds(tmp_path):
    # main: exit 70, InferenceError from infer_shapes in edgec/quantize/stage.py
    from tests.ppocr import INPUT_NAME, INPUT_SHAPES, ppocr_model

    shape = ",".join(map(str, INPUT_SHAPES["det"]))
    r = edgec("build", ppocr_model("det"), "--quantize", "fp16", "--target", "ort-mobile", "--out", tmp_path / "o",
              "--input-shape", f"{INPUT_NAME}={shape}", "--latency", "off", timeout=600)
    assert r.returncode == 0, r.stderr
    manifest = assert_one_whole_build(tmp_path / "o")
    assert manifest["artifacts"][0]["precision"] == "fp16" and manifest["artifacts"][0]["numerics"]["passed"]


def test_an_internal_error_in_one_target_does_not_stop_the_others(tmp_path, monkeypatch):
    # main: a bug in one target's prepare stage (the fp16 InferenceError) stopped every target of --target all
    from edgec.lower.coreml.backend import CoreMLBackend

    def broken(self, model):
        raise RuntimeError("injected bug")

    monkeypatch.setattr(CoreMLBackend, "unsupported", broken)
    out = tmp_path / "o"
    outcome = api.build(_save(cnn(), tmp_path / "m.onnx"),
                        api.BuildOptions(target="all", out_dir=out, validate=False))
    assert sorted(a.artifact.target for a in outcome.result.artifacts) == ["android", "ort-mobile"]
    (f,) = outcome.failures
    assert f.target == "ios" and isinstance(f.error, InternalError) and f.error.exit_code == 70
    assert "injected bug" in str(f.error) and "prepare" in str(f.error)
    manifest = assert_one_whole_build(out)
    assert manifest["errors"][0]["kind"] == "internal error"


def _castlike(like_shape, relu_on_like=False):
    nodes = [helper.make_node("CastLike", ["x", "like"], ["y"], name="cast"), helper.make_node("Relu", ["y"], ["z"])]
    outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT16, [3, 5])]
    if relu_on_like:  # a second use that reads the empty tensor's elements
        nodes.append(helper.make_node("Relu", ["like"], ["w"], name="relu_like"))
        outputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT16, like_shape))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 5]),
                                           helper.make_tensor_value_info("like", TensorProto.FLOAT16, like_shape)],
                              outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return model


def test_empty_input_read_only_for_its_dtype_is_not_refused(tmp_path):
    # main: CastLike's `like` of shape [0] (the ONNX node tests test_castlike_*) was a ShapeError "zero-sized dim"
    # although only its dtype is read and every output is full
    from edgec.graph.shapes import fix_input_shapes

    assert fix_input_shapes(_castlike([0]), {}) == {"x": [3, 5], "like": [0]}
    with pytest.raises(ShapeError, match="'like' has a zero-sized dim"):  # its elements are read: still refused
        fix_input_shapes(_castlike([0], relu_on_like=True), {})
    out = tmp_path / "out"
    r = edgec("build", _save(_castlike([0]), tmp_path / "castlike.onnx"), "--target", "ort-mobile", "--out", out,
              "--latency", "off")
    assert r.returncode == 0, r.stderr
    (artifact,) = json.loads((out / "manifest.json").read_text())["artifacts"]
    assert artifact["numerics"]["passed"] and artifact["numerics"]["outputs"]  # compared on full outputs


def test_coreml_feature_names_are_swift_members_xcode_can_generate(tmp_path):
    # main: features named 'class' / 'provider' / 'xShapedArray' went into the .mlpackage as they were: Xcode's
    # generated Swift class (a property per feature, next to its own provider, featureNames, xShapedArray) does not
    # compile. 'a.b' and 'a_b' both sanitise to a_b: one is renamed, deterministically, the map in the manifest.
    import coremltools as ct

    names_in, names_out = ["class", "a.b", "a_b"], ["provider", "xShapedArray", "featureNames"]
    nodes = [helper.make_node("Add", [names_in[0], names_in[1]], ["s"]),
             helper.make_node("Mul", ["s", names_in[2]], [names_out[0]]),
             helper.make_node("Relu", [names_out[0]], [names_out[1]]),
             helper.make_node("Neg", [names_out[0]], [names_out[2]])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in names_in],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in names_out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    out = tmp_path / "out"
    r = edgec("build", _save(model, tmp_path / "m.onnx"), "--target", "ios", "--out", out, "--latency", "off")
    assert r.returncode == 0, r.stderr
    (artifact,) = json.loads((out / "manifest.json").read_text())["artifacts"]
    assert artifact["numerics"]["passed"]
    name_map = artifact["details"]["name_map"]
    features = {**name_map["inputs"], **name_map["outputs"]}
    assert features == {"class": "class_", "a.b": "a_b", "a_b": "a_b_1", "provider": "provider_",
                        "xShapedArray": "xShapedArray_", "featureNames": "featureNames_"}
    spec = ct.utils.load_spec(str(out / artifact["path"]))
    assert sorted(f.name for f in [*spec.description.input, *spec.description.output]) == sorted(features.values())
