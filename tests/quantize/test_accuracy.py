"""Accuracy metrics and gates for reduced-precision builds."""

from dataclasses import replace

import numpy as np
import onnx

from edgec.artifact import OutputMetrics
from edgec.config.models import NumericsSpec, PrecisionThresholds
from edgec.quantize.accuracy import thresholds
from edgec.runtimes.numerics import gate_output as _check
from edgec.runtimes.outputs import classifier_shaped, topk_agreement


def test_classifier_shapes():
    assert classifier_shaped(np.zeros((1, 1000))) and classifier_shaped(np.zeros((2, 10, 1, 1)))
    assert not classifier_shaped(np.zeros((1, 8))) and not classifier_shaped(np.zeros((1, 10, 7, 7)))


def test_topk_agreement_uses_the_reference_top1_as_label():
    ref = [np.eye(12)[[3]], np.eye(12)[[5]]]  # labels 3 and 5
    act = [np.arange(12.0)[None], np.eye(12)[[5]]]  # sample 0: top-1 is 11, class 3 not in the top-5
    assert topk_agreement(ref, act) == (0.5, 0.5)
    act[0] = -np.abs(np.arange(12.0) - 4)[None]  # top-1 4, top-5 {4, 3, 5, 2, 6}
    assert topk_agreement(ref, act) == (0.5, 1.0)


def test_thresholds_per_precision_fall_back_to_fp32():
    spec = NumericsSpec(min_cosine=0.9995, min_top5=0.8,
                        precision={"int8": PrecisionThresholds(min_cosine=0.98, min_top1=0.7)})
    t = thresholds(spec, "int8-weights")
    assert t == {"min_cosine": 0.98, "max_abs": None, "min_top1": 0.7, "min_top5": 0.8, "min_delta_cosine": 0.98}
    assert thresholds(spec, "fp16")["min_cosine"] == 0.9995  # no fp16 entry: the fp32 gate


def test_topk_gates_only_measured_builds():
    m = OutputMetrics(max_abs=0.1, cosine=0.995, delta_cosine=0.9, top1=0.75, top5=1.0)
    gates = {"min_cosine": 0.99, "max_abs": None, "min_top1": 0.9, "min_top5": None, "min_delta_cosine": 0.5}
    assert _check("logits", m, gates, measured=True) == ["output 'logits' top-1 agreement 0.750 < 0.9"]
    assert _check("logits", m, gates, measured=False) == []
    gates["min_cosine"] = 0.999
    assert "cosine 0.995000 < 0.999" in _check("logits", m, gates, measured=False)[0]
    # measured classifiers are gated on decisions, not logit cosine; without a top-1 gate the cosine gate is back
    assert _check("logits", replace(m, top1=0.99), gates, measured=True) == []
    gates["min_top1"] = None
    assert "cosine 0.995000 < 0.999" in _check("logits", replace(m, top1=0.99), gates, measured=True)[0]


def _softmax_model(opset: int, rank: int) -> onnx.ModelProto:
    from onnx import TensorProto, helper

    shape = [1, 2] if rank == 2 else [1, 5, 30]
    nodes = [helper.make_node("Softmax", ["x"], ["s"], axis=-1), helper.make_node("Identity", ["s"], ["p"])]
    g = helper.make_graph(nodes, "s", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("p", TensorProto.FLOAT, shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_softmax_outputs_are_classifiers_compared_as_logits():
    from edgec.runtimes.outputs import output_accuracy, output_kinds

    kinds = output_kinds(_softmax_model(13, 2))
    assert kinds["p"].class_axis == 1 and kinds["p"].log_of == "Softmax"  # 2 classes: still a classifier
    assert output_kinds(_softmax_model(13, 3))["p"].class_axis == 2  # CTC-style [N, T, C]: per time step
    assert output_kinds(_softmax_model(11, 3))["p"].class_axis == 2  # opset 11, axis -1: the last axis
    sm = lambda z: np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)  # noqa: E731
    logits = np.array([[4.0, -4.0]]), np.array([[0.1, -0.1]])
    noisy = np.array([[4.05, -4.0]]), np.array([[-0.05, 0.02]])  # tiny logit error; the near-tie flips
    m, _ = output_accuracy("p", [sm(x) for x in logits], [sm(x) for x in noisy], kinds)
    assert m.top1 == 0.5  # the flip counts
    # one cosine over both samples' centered logits [4, -4, .1, -.1] vs [4.025, -4.025, -.035, .035]: the flipped
    # near-tie barely moves it (a per-sample cosine would read -1 for it)
    r, a = np.array([4, -4, .1, -.1]), np.array([4.025, -4.025, -.035, .035])
    assert abs(m.cosine - r @ a / np.linalg.norm(r) / np.linalg.norm(a)) < 1e-9 and m.cosine > 0.999
    m1, _ = output_accuracy("p", [sm(logits[0])], [sm(noisy[0])], kinds)
    assert m1.cosine > 0.9999 and m1.top1 == 1.0
