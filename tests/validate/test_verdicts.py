"""Verdicts by output kind (edgec.runtimes.outputs + edgec.validate.numerics), one definition for every check."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.errors import ReferenceNotFinite
from edgec.runtimes.outputs import output_kinds
from edgec.runtimes.numerics import check_reference_finite, compare, reference_noise


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_model(shape):
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["p"], axis=-1)], "s",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("p", TensorProto.FLOAT, shape)])
    return onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


def test_fp16_underflow_is_not_a_logit_error():
    """A CTC recognizer's probabilities (PP-OCR rec: 6625 classes): most classes are ~1e-20 in fp32 and 0 in fp16.
    Compared as probabilities or as floored logits the fp16 result agrees; the log of an underflow does not."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 8, (1, 40, 500)).astype(np.float32)
    ref = [{"p": _softmax(logits)}, {"p": _softmax(logits[:, ::-1].copy())}]
    act = [{"p": r["p"].astype(np.float16).astype(np.float32)} for r in ref]
    assert (act[0]["p"] == 0).mean() > 0.3 and (ref[0]["p"] > 0).all()
    kinds = output_kinds(_softmax_model([1, 40, 500]))
    assert kinds["p"].log_of == "Softmax"
    res = compare(ref, act, "rt", 0.999, kinds=kinds)
    assert res.passed, res.message
    assert res.outputs["p"].kind == "probabilities" and res.outputs["p"].cosine > 0.9999
    # a wrong class order is still caught
    wrong = [{"p": r["p"][:, :, ::-1].copy()} for r in act]
    assert not compare(ref, wrong, "rt", 0.999, kinds=kinds).passed


def test_dense_map_judged_against_its_range():
    """A sigmoid map near 0 on random inputs (PP-OCR det: max 0.047, mean 4e-7): an error of 1e-4 is 0.3% of
    its range, however low the cosine of such a sparse map; a shifted map is not."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:40, 0:40]

    def blobs():
        m = sum(0.047 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0) for cy, cx in rng.uniform(5, 35, (2, 2)))
        return m[None, None].astype(np.float32)

    ref = [{"m": blobs()} for _ in range(2)]
    act = [{"m": r["m"] + rng.normal(0, 1.5e-4, r["m"].shape).astype(np.float32)} for r in ref]
    plain = compare(ref, act, "rt", 0.999)
    assert not plain.passed  # what the plain cosine said
    res = compare(ref, act, "rt", 0.999, kinds={})
    assert res.passed, res.message
    assert res.outputs["m"].kind == "dense" and res.outputs["m"].range_error < 4.5e-3
    shifted = [{"m": np.roll(r["m"], 3, axis=3)} for r in ref]
    assert not compare(ref, shifted, "rt", 0.999, kinds={}).passed


def test_detector_channel_groups_each_on_their_scale():
    """YOLO-style Concat of 4 box coordinates (hundreds of pixels) and 80 class scores (0..1): a wrong class
    score is invisible in the concatenated cosine, not in its own group's."""
    rng = np.random.default_rng(2)
    box = helper.make_tensor_value_info("box", TensorProto.FLOAT, [1, 4, 100])
    cls = helper.make_tensor_value_info("cls", TensorProto.FLOAT, [1, 80, 100])
    g = helper.make_graph([helper.make_node("Concat", ["box", "cls"], ["y"], axis=1)], "d", [box, cls],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 84, 100])])
    kinds = output_kinds(onnx.shape_inference.infer_shapes(
        helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])))
    assert kinds["y"].groups == ((0, 4), (4, 84)) and kinds["y"].group_axis == 1

    def sample():
        return np.concatenate([rng.uniform(0, 640, (1, 4, 100)), rng.random((1, 80, 100)) * 0.1], 1).astype(
            np.float32)

    ref = [{"y": sample()}, {"y": sample()}]
    bad = [{"y": r["y"].copy()} for r in ref]
    for b in bad:
        b["y"][:, 4:] = b["y"][:, 4:][:, ::-1]  # class scores in the wrong order
    assert compare(ref, bad, "rt", 0.999).passed  # the boxes dominate the plain cosine
    res = compare(ref, bad, "rt", 0.999, kinds=kinds)
    assert not res.passed and res.outputs["y"].kind == "detector"


def test_reference_noise_widens_the_gate():
    """An output that ORT itself reproduces only to cosine 0.9999 (optimizations off vs on) is allowed ten
    times that, like the simplifier's check; a clean one keeps the profile's gate."""
    rng = np.random.default_rng(3)
    ref = [{"y": rng.normal(size=(1, 64)).astype(np.float32)} for _ in range(2)]
    unopt = [{"y": r["y"] + rng.normal(0, 0.014, (1, 64)).astype(np.float32)} for r in ref]
    noise = reference_noise(ref, unopt)
    assert 0.9998 < noise["y"][0] < 0.99995
    act = [{"y": r["y"] + rng.normal(0, 0.03, (1, 64)).astype(np.float32)} for r in ref]
    assert not compare(ref, act, "rt", 0.9999).passed
    res = compare(ref, act, "rt", 0.9999, noise=noise)
    assert res.passed, res.message
    assert res.outputs["y"].noise_cosine == noise["y"][0]


def test_nan_reference_is_its_own_error():
    """(1 - mask) * finfo.min with a mask of 2 overflows to -inf, softmax gives NaN: the reference's fault."""
    c = {"one": np.array(1, np.float32), "big": np.array(np.finfo(np.float32).min, np.float32)}
    g = helper.make_graph([helper.make_node("Sub", ["one", "m"], ["inv"]), helper.make_node("Mul", ["inv", "big"], ["b"]),
                           helper.make_node("Softmax", ["b"], ["y"], axis=-1)], "nan",
                          [helper.make_tensor_value_info("m", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                          [numpy_helper.from_array(v, k) for k, v in c.items()])
    from edgec.runtimes.host_ort import OrtRunner

    runner = OrtRunner(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    check_reference_finite([runner.run({"m": np.array([[1, 1, 0, 1]], np.float32)})])
    with pytest.raises(ReferenceNotFinite, match="'y'.*NaN/Inf.*--validation-data"):
        check_reference_finite([runner.run({"m": np.array([[3, 2, 0, 5]], np.float32)})])
