"""Issue 19 "the detector" on a TRAINED detector (tests/trained_detector.py: MTCNN's P-Net face detector from a pinned
PyPI sdist) and real photos: one `--target all --quantize int8` build calibrated on the calibration photos' crops,
with `quantize.target` GOAL measured on OTHER crops of the calibration photos; on the evaluation photos' crops,
decoded (threshold + NMS in numpy, outside the model), the int8 artifact keeps the fp32 detections: a detection of
int8 at IoU >= 0.9 (one class, faces) for >= 95% of fp32's.
Slow (~1 min): bench/quantize_trained.py --detector prints the same figures with ORT quantize_static beside them."""

from __future__ import annotations

import onnx
import pytest

from edgec.runtimes.host_ort import OrtRunner
from tests.photos import EVAL_PHOTOS
from tests.trained_detector import TARGET

# The box-offset output's cosine to fp32 on the held-out crops is what tracks the kept detections (measured there,
# evaluation-photo figures after the arrow: all int8 0.9887 -> 0.847; conv2d, conv2d_1 float 0.9962 -> 0.917;
# conv2d..conv2d_2 float 0.9977 -> 0.952), so min_cosine 0.9975 is the goal that implies the bar. int8 activations
# reach it only with conv2d..conv2d_2 float, 96% of P-Net's weights, past the default size bound (2%); so the stage
# (quantize.activations auto) takes int16 activations, which meet it with every node quantized.
GOAL = TARGET


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tests.trained_detector import build_int8, detector_inputs, detector_model

    arts = build_int8(tmp_path_factory.mktemp("qdet"), GOAL)
    xs, _ = detector_inputs(EVAL_PHOTOS)
    return arts, xs, OrtRunner(onnx.load(str(detector_model())), threads=1)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["android", "ios", "ort-mobile"])
def test_int8_with_quantize_target_keeps_fp32_detections(built, target):
    from tests.trained_detector import agreement, runner_of

    arts, xs, fp32 = built
    notes = " ".join(arts[target].artifact.notes)
    assert f"quantize: target cosine >= {GOAL['min_cosine']} met" in notes, notes
    assert "int16 activations because int8 ones could not meet quantize.target" in notes, notes
    assert "with 0 node(s) float" in notes, notes
    got = agreement(fp32, runner_of(arts[target]), xs)
    print(target, got)
    assert got["fp32"] >= 200, got  # the photos give the detector real work (faces and face-like windows)
    assert got["ratio"] >= 0.95, (target, got)


@pytest.fixture(scope="module")
def built_int16(tmp_path_factory):
    """{tflite.int16_activations mode: artifacts} of `quantize.activations: int16` builds (ios and ort-mobile do
    not read that key: the "float" build's serve)."""
    from tests.trained_detector import build_int8

    return {mode: build_int8(tmp_path_factory.mktemp(f"qdet16{mode}"), settings={"activations": "int16"},
                             sections={"tflite": {"int16_activations": mode}}) for mode in ("float", "kernels")}


# P-Net's int8 error is in its activations (int8 weights with float activations, the ios artifact, keep 0.975):
# int16 activations with the same int8 weights keep 0.975 on every target (2026-12-07: 1231 of 1263 on ort-mobile
# and android's 16x8 kernels, 1233 on ios), no node float, no target needed.
@pytest.mark.slow
@pytest.mark.parametrize("target, mode", [("android", "float"), ("android", "kernels"), ("ios", "float"),
                                          ("ort-mobile", "float")])
def test_int16_activations_keep_fp32_detections(built, built_int16, target, mode):
    from ai_edge_litert import schema_py_generated as S

    from tests.trained_detector import agreement, runner_of

    _, xs, fp32 = built
    art = built_int16[mode][target]
    assert any("int16 activations (16x8)" in n for n in art.artifact.notes), art.artifact.notes
    got = agreement(fp32, runner_of(art), xs)
    print(target, mode, got)
    assert got["ratio"] >= 0.95, (target, got)
    if target == "android":  # kernels: LiteRT's 16x8 convolutions; float: float convolutions on int8 weights
        m = S.ModelT.InitFromPackedBuf(art.final_path.read_bytes(), 0)
        sg, codes = m.subgraphs[0], m.operatorCodes
        convs = [op for op in sg.operators if codes[op.opcodeIndex].builtinCode == S.BuiltinOperator.CONV_2D]
        want = S.TensorType.INT16 if mode == "kernels" else S.TensorType.FLOAT32
        assert len(convs) == 5 and all(sg.tensors[op.inputs[0]].type == want for op in convs)
        # the weights are int8 in the file either way (float: int8 constants through DEQUANTIZE)
        stored = [sg.tensors[op.inputs[1 if mode == "kernels" else 0]] for op in sg.operators
                  if codes[op.opcodeIndex].builtinCode == (S.BuiltinOperator.CONV_2D if mode == "kernels"
                                                           else S.BuiltinOperator.DEQUANTIZE)]
        assert sum(t.type == S.TensorType.INT8 and m.buffers[t.buffer].data is not None for t in stored) == 5


def test_decoding_matches_itself_and_nms_keeps_the_best():
    """The numpy postprocessing on fp32 outputs: identical outputs keep every detection; NMS drops overlaps."""
    import numpy as np

    from tests.trained_detector import INPUT_NAME, detections, detector_inputs, detector_model, match, nms

    x = detector_inputs(["astronaut"])[0][0]
    out = OrtRunner(onnx.load(str(detector_model())), threads=1).run({INPUT_NAME: x})
    d = detections(out)
    assert len(d[0]) > 0 and match(d, d) == len(d[0])
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float64)
    assert nms(boxes, np.array([0.8, 0.9, 0.5]), 0.5) == [1, 2]
