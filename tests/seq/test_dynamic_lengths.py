"""Dynamic lengths: the text encoder exported with a dynamic sequence axis, built ONCE per target with a range on
that axis, runs at three lengths from the one artifact and matches ONNX Runtime on the original at each."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
import pytest

from edgec import api
from edgec.errors import ShapeError, UnsupportedOp, UsageError
from edgec.graph.shapes import parse_input_shape_flags
from edgec.lower.backend import get_backend
from tests.zoo import zoo_model, seq_inputs

NAME = "text_encoder_dyn"
LO, HI = 4, 64  # the position table has 64 rows
RANGE = [f"{n}=1,{LO}..{HI}" for n in ("input_ids", "attention_mask", "token_type_ids")]
LENGTHS = (LO, 23, HI)
MIN_COSINE = {"ort-mobile": 0.9999, "android": 0.9999, "ios": 0.999}  # ios: fp16 compute in the MIL interpreter


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _built(target: str, out) -> api.ArtifactResult:
    outcome = api.build(zoo_model(NAME), api.BuildOptions(target=target, out_dir=out, input_shapes=RANGE,
                                                          latency="off"))
    assert outcome.ok, outcome.result.artifacts[0].numerics
    return outcome.result.artifacts[0]


@pytest.mark.parametrize("target", ["ort-mobile", "ios", "android"])
def test_one_artifact_matches_at_three_lengths(target, tmp_path):
    art = _built(target, tmp_path)
    runner = get_backend(art.artifact.format).runner(replace(art.artifact, path=art.final_path), 1)
    ref = ort.InferenceSession(str(zoo_model(NAME)), providers=["CPUExecutionProvider"])
    for n in LENGTHS:
        feeds = seq_inputs(NAME, seed=n, length=n)
        want = ref.run(None, feeds)[0]
        got = runner.run(feeds)["embedding"]
        assert got.shape == want.shape and _cosine(got, want) >= MIN_COSINE[target], (n, _cosine(got, want))
    # the build itself validated min, midpoint and max, and says so per length
    rows = json.loads((tmp_path / "manifest.json").read_text())["artifacts"][0]["details"]["numerics_by_length"]
    assert [r["shapes"]["input_ids"][1] for r in rows] == [LO, (LO + HI) // 2, HI]
    assert all(r["passed"] and r["min_cosine"] >= MIN_COSINE[target] for r in rows)
    assert "numerics at attention_mask [1, 4]" in (tmp_path / "report.md").read_text()


def test_ios_declares_a_range_dim(tmp_path):
    """The .mlpackage's input feature carries the range (CoreML's RangeDim), not the max."""
    import coremltools as ct

    art = _built("ios", tmp_path)
    spec = ct.utils.load_spec(str(art.final_path))
    ids = next(i for i in spec.description.input if i.name == "input_ids").type.multiArrayType
    assert [(r.lowerBound, r.upperBound) for r in ids.shapeRange.sizeRanges] == [(1, 1), (LO, HI)]


def test_ort_mobile_keeps_the_dim_params(tmp_path):
    """A range keeps the model's own dynamic dim in the .ort (ORT runs it natively); a fixed size fixes it."""
    art = _built("ort-mobile", tmp_path / "range")
    sess = ort.InferenceSession(str(art.final_path), providers=["CPUExecutionProvider"])
    assert {i.name: i.shape for i in sess.get_inputs()}["input_ids"] == [1, "seq"]
    fixed = api.build(zoo_model(NAME), api.BuildOptions(
        target="ort-mobile", out_dir=tmp_path / "fixed", latency="off",
        input_shapes=[f"{n}=1,16" for n in ("input_ids", "attention_mask", "token_type_ids")]))
    sess = ort.InferenceSession(str(fixed.result.artifacts[0].final_path), providers=["CPUExecutionProvider"])
    assert {i.name: i.shape for i in sess.get_inputs()}["input_ids"] == [1, 16]


def test_a_quantized_build_fixes_the_range_and_says_so(tmp_path):
    outcome = api.build(zoo_model(NAME), api.BuildOptions(target="ort-mobile", out_dir=tmp_path, input_shapes=RANGE,
                                                          latency="off", quantize="fp16"))
    assert outcome.ok
    sess = ort.InferenceSession(str(outcome.result.artifacts[0].final_path), providers=["CPUExecutionProvider"])
    assert {i.name: i.shape for i in sess.get_inputs()}["input_ids"] == [1, HI]
    assert "fixed to their max in this quantized build" in (tmp_path / "report.md").read_text()


def test_range_syntax():
    assert parse_input_shape_flags(["ids=1,1..512"]) == {"ids": [1, (1, 512)]}
    for bad in ("ids=1,8..4", "ids=1,0..4", "ids=1,..4"):
        with pytest.raises(UsageError):
            parse_input_shape_flags([bad])


def test_range_on_a_static_axis_is_refused(tmp_path):
    """The zoo's static text encoder baked 16 into its graph at export: a range there cannot work, and says why."""
    with pytest.raises(ShapeError, match="fixed to 16 in the model.*dynamic_axes"):
        api.build(zoo_model("text_encoder"), api.BuildOptions(
            target="ort-mobile", out_dir=tmp_path, latency="off",
            input_shapes=[f"{n}=1,4..64" for n in ("input_ids", "attention_mask", "token_type_ids")]))


def test_profile_range(tmp_path):
    """The profile form `shape: [1, [4, 64]]` is the same range as the flag."""
    profile = tmp_path / "p.yaml"
    shapes = "".join(f"  {n}: {{shape: [1, [4, 64]]}}\n" for n in ("input_ids", "attention_mask", "token_type_ids"))
    profile.write_text("name: p\ntarget: ort-mobile\nhardware:\n  cpu: {cores: 2, peak_gflops_fp32: 10}\n"
                       f"  memory_bandwidth_gbps: 5\ninputs:\n{shapes}validate:\n  latency: {{mode: off}}\n")
    outcome = api.build(zoo_model(NAME), api.BuildOptions(profile=str(profile), out_dir=tmp_path / "o"))
    assert outcome.ok
    model = onnx.load(str(zoo_model(NAME)))
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_param == "seq"
    assert len(outcome.result.artifacts[0].artifact.details["numerics_by_length"]) == 3


def test_android_keeps_the_sequence_axis_dynamic(tmp_path):
    """The .tflite says -1 on the sequence axis of its inputs, and LiteRT resizes to any length in the range."""
    from ai_edge_litert.interpreter import Interpreter

    art = _built("android", tmp_path)
    details = Interpreter(model_path=str(art.final_path)).get_signature_runner().get_input_details()
    assert [int(d) for d in details["input_ids"]["shape_signature"]] == [1, -1]


def _seq_model(path, body: list, out_shape, extra_inits=()) -> str:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(body, "g", [x], [y], initializer=list(extra_inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def test_a_lowering_that_bakes_the_length_is_refused_on_android(tmp_path):
    """x[:, 1:] on the dynamic axis: the ONNX graph is length-agnostic (ends = INT64_MAX), but the TFLite lowering
    resolves the end to the build length; the .tflite would be wrong at any other length, so the build is refused
    naming the Slice, and says how to fix the length instead."""
    inits = [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in
             (("s", 1), ("e", 2**63 - 1), ("a", 1))]
    path = _seq_model(tmp_path / "slice.onnx", [helper.make_node("Slice", ["x", "s", "e", "a"], ["t"], name="drop_first"),
                                                 helper.make_node("Relu", ["t"], ["y"], name="relu")],
                      [1, "seq_1", 8], inits)
    with pytest.raises(UnsupportedOp) as e:
        api.build(path, api.BuildOptions(target="android", out_dir=tmp_path / "o", input_shapes=["x=1,4..32,8"],
                                         latency="off"))
    msg = str(e.value)
    assert "drop_first" in msg and "dynamic length" in msg and "--input-shape" in msg
    # the same range builds for ort-mobile, which runs the dynamic graph natively
    assert api.build(path, api.BuildOptions(target="ort-mobile", out_dir=tmp_path / "ort",
                                            input_shapes=["x=1,4..32,8"], latency="off")).ok


def test_a_constant_folded_from_the_length_is_refused(tmp_path):
    """A [seq, seq] mask computed from Shape folds (onnxsim) into a constant of the length in two axes: no
    run-time cut expresses it, so the fixed-shape targets refuse naming the node that reads it."""
    inits = [helper.make_tensor("one", TensorProto.INT64, [1], [1]), helper.make_tensor("two", TensorProto.INT64, [1], [2])]
    body = [helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Slice", ["shape", "one", "two"], ["n"]),
            helper.make_node("Concat", ["n", "n"], ["nn"], axis=0),
            helper.make_node("ConstantOfShape", ["nn"], ["ones"],
                             value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
            helper.make_node("Trilu", ["ones"], ["mask"], upper=0),
            helper.make_node("MatMul", ["mask", "x"], ["y"], name="causal_sum")]
    path = _seq_model(tmp_path / "mask.onnx", body, [1, "seq", 8], inits)
    for target in ("android", "ios"):
        with pytest.raises(ShapeError, match="causal_sum.*depends on the length.*--input-shape x=1,32,8"):
            api.build(path, api.BuildOptions(target=target, out_dir=tmp_path / target, input_shapes=["x=1,4..32,8"],
                                             latency="off"))


def test_two_independent_lengths_are_refused_on_android(tmp_path):
    """Two inputs with their own dynamic axes (dim names 'a' and 'b'): one TFLite build follows one length."""
    xa = helper.make_tensor_value_info("xa", TensorProto.FLOAT, [1, "a", 8])
    xb = helper.make_tensor_value_info("xb", TensorProto.FLOAT, [1, "b", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "a", "b"])
    graph = helper.make_graph([helper.make_node("Transpose", ["xb"], ["xbt"], perm=[0, 2, 1]),
                               helper.make_node("MatMul", ["xa", "xbt"], ["y"])], "g", [xa, xb], [y])
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(UnsupportedOp, match="2 independent lengths"):
        api.build(path, api.BuildOptions(target="android", out_dir=tmp_path / "o", latency="off",
                                         input_shapes=["xa=1,2..8,8", "xb=1,3..9,8"]))
