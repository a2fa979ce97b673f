"""int8 on the trained PP-OCR detector and recognizer (issue 19) with a calibration folder of rendered text.

The fast test is the CoreML side of it on a small net: the quantizer writes DequantizeLinear of an int8 weight and
of an int32 bias (scale shaped [1]) in front of ConvTranspose, and the ios backend lowers them (constexpr weight,
float bias) instead of refusing its own quantizer's output. The slow tests build the trained det (DBNet: its
ConvTranspose/Sigmoid head) and rec (SVTR attention + CTC) int8 for all three targets, calibrated on rendered
text (tests/ocr_text.py), with the stated quantize.target (OCR_TARGETS) measured on a second set of rendered text,
and check it on a third against fp32 ONNX Runtime: det's probability map (cosine, F-measure of the thresholded
map), rec's top-1 per CTC step and decoded strings (~20-40 s each on 2 cores).
"""

from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import api
from edgec.lower.backend import get_backend
from edgec.runtimes.host_ort import OrtRunner


def _upsampler() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.2, (16, 8, 2, 2)).astype(np.float32), "wt"),
        numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "bt"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("ConvTranspose", ["r", "wt", "bt"], ["u"], name="up", strides=[2, 2]),
        helper.make_node("Sigmoid", ["u"], ["y"], name="prob"),
    ]
    graph = helper.make_graph(nodes, "up", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32, 32])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _outputs(runner, feeds):
    return [np.asarray(next(iter(runner.run(f).values()))) for f in feeds]


def _cos(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _runners(outcome):
    return {a.artifact.target: get_backend(a.artifact.format).runner(replace(a.artifact, path=a.final_path), 1)
            for a in outcome.result.artifacts}


def test_ios_lowers_the_dequantized_convtranspose_weight_and_bias_the_quantizer_wrote(tmp_path):
    path = tmp_path / "up.onnx"
    onnx.save(_upsampler(), str(path))
    rng = np.random.default_rng(0)
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(12):
        np.save(calib / f"x{i:02d}.npy", rng.normal(0, 1, (1, 3, 32, 32)).astype(np.float32))
    outcome = api.build(str(path), api.BuildOptions(target="ios", out_dir=tmp_path / "out", quantize="int8",
                                                    calibration=str(calib), latency="off", validate=False))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    feeds = [{"x": rng.normal(0, 1, (1, 3, 32, 32)).astype(np.float32)} for _ in range(3)]
    ref = _outputs(OrtRunner(path, threads=1), feeds)
    got = _outputs(_runners(outcome)["ios"], feeds)
    assert min(_cos(a, b.reshape(a.shape)) for a, b in zip(ref, got)) >= 0.99


def _build(tmp_path, name: str, calib: np.ndarray):
    """`--target all --quantize int8` calibrated on `calib`, with the stated OCR_TARGETS[name] (quantize.target
    measured on a held-out folder of other rendered text, never the evaluation inputs)."""
    from tests.ocr_text import OCR_TARGETS, render, save_folder
    from tests.ppocr import INPUT_SHAPES, ppocr_model
    from tests.quantize.helpers import target_profile

    save_folder(tmp_path / "calib", calib, name)
    save_folder(tmp_path / "held", render(name, 500, 16), name)
    stated = OCR_TARGETS[name]
    profile = target_profile(tmp_path, {**stated["target"], "held_out": str(tmp_path / "held")}, stated.get("method"),
                             stated.get("settings"))
    model = ppocr_model(name)
    outcome = api.build(model, api.BuildOptions(
        target="all", out_dir=tmp_path / "out", quantize="int8", calibration=str(tmp_path / "calib"),
        latency="off", validate=False, model_name=name, profile=str(profile),
        input_shapes=[f"x={','.join(map(str, INPUT_SHAPES[name]))}"]))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    for a in outcome.result.artifacts:  # the build says it met the stated target on the held-out folder
        assert any(n.startswith("quantize: target ") and " met on " in n for n in a.artifact.notes), a.artifact.notes
    return model, outcome


@pytest.mark.slow
def test_trained_text_detector_int8_with_quantize_target_keeps_the_text_map_on_every_target(tmp_path):
    from tests.ocr_text import OCR_TARGETS, map_agreement, text_pages

    model, outcome = _build(tmp_path, "det", text_pages(0, 40))
    pages = [{"x": x} for x in text_pages(1000, 12)]
    ref = _outputs(OrtRunner(model, threads=1), pages)
    assert np.mean([(r > 0.3).mean() for r in ref]) > 0.03  # the fp32 net finds the text (~10% of pixels)
    measured = {}
    for target, runner in _runners(outcome).items():
        got = [g.reshape(r.shape) for g, r in zip(_outputs(runner, pages), ref)]
        cos = [_cos(g, r) for g, r in zip(got, ref)]
        measured[target] = (min(cos), np.mean(cos), np.mean([map_agreement(g, r) for g, r in zip(got, ref)]))
    print(f"det int8 vs fp32 on 12 evaluation pages (worst / mean map cosine, F of the map > 0.3): {measured}")
    assert set(measured) == {"android", "ios", "ort-mobile"}
    # The stated goal (worst held-out page's map cosine 0.99, int16 activations: int8 ones reach 0.96 at best) holds
    # on the evaluation pages too, and the thresholded maps agree. (The "0.01" was measured on N(0, 1)
    # inputs, where the fp32 map is <= 1e-3 everywhere and int8 rounds it to exactly 0.)
    bar = OCR_TARGETS["det"]["target"]["min_cosine"]
    assert all(worst >= bar and f >= 0.98 for worst, _, f in measured.values()), measured


@pytest.mark.slow
def test_trained_text_recognizer_int8_with_quantize_target_reads_rendered_lines_on_every_target(tmp_path):
    from tests.ocr_text import OCR_TARGETS, ctc_decode, text_lines

    calib, _ = text_lines(0, 40)
    model, outcome = _build(tmp_path, "rec", calib)
    lines, _ = text_lines(1000, 24)
    feeds = [{"x": x} for x in lines]
    ref = _outputs(OrtRunner(model, threads=1), feeds)
    measured = {}
    for target, runner in _runners(outcome).items():
        got = [g.reshape(r.shape) for g, r in zip(_outputs(runner, feeds), ref)]
        steps = np.mean([np.mean(g.argmax(-1) == r.argmax(-1)) for g, r in zip(got, ref)])
        strings = np.mean([ctc_decode(g) == ctc_decode(r) for g, r in zip(got, ref)])
        measured[target] = (float(steps), float(strings))
    print(f"rec int8 vs fp32 on 24 evaluation lines (CTC step agreement, decoded strings equal): {measured}")
    assert set(measured) == {"android", "ios", "ort-mobile"}
    # The stated goal (top-1 per CTC step on the held-out lines >= 0.98, int16 activations: int8 ones reach 0.94 at
    # best, strings 0.75) holds on the evaluation lines too, and the decoded strings follow (int8 activations
    # dropped the space between words on most misses).
    bar = OCR_TARGETS["rec"]["target"]["min_top1_agreement"]
    assert all(steps >= bar and strings >= 0.9 for steps, strings in measured.values()), measured
