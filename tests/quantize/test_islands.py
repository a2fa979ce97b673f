"""Float islands found from calibrated ranges: BN over channels of very different spread, mixed-range Concat."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.config.loader import load_profile
from edgec.quantize import islands
from edgec.quantize.stage import quantize

from .helpers import npy_folder, write_profile

pytestmark = pytest.mark.filterwarnings("ignore::edgec.quantize.calibration.CalibrationWarning")
SHAPE = [1, 8, 16, 16]


def _model(nodes, inits, out_shape) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _run(model: onnx.ModelProto, xs) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.stack([sess.run(None, {"x": x})[0] for x in xs])


def _dense_block(extra_reader: bool = False) -> onnx.ModelProto:
    """DenseNet's pattern: Concat of a loud and a quiet branch (100x apart), then a BatchNormalization whose
    statistics are the data's own (so it scales the quiet channels up 100x), Relu, Conv."""
    rng = np.random.default_rng(0)
    w = lambda *s: rng.normal(0, np.sqrt(2 / np.prod(s[1:])), s).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(w(8, 8, 3, 3), "wa"), numpy_helper.from_array(w(8, 8, 3, 3) * 0.01, "wb"),
             numpy_helper.from_array(w(8, 16, 1, 1), "wc")]
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_loud", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "wb"], ["b"], name="conv_quiet", pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["a", "b"], ["cat"], name="concat", axis=1),
             helper.make_node("BatchNormalization", ["cat", "g", "beta", "mean", "var"], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "wc"], ["y"], name="conv_out")]
    if extra_reader:  # a Conv also reads the Concat: it needs the tensor int8, so nothing can stay float
        inits.append(numpy_helper.from_array(w(8, 16, 1, 1), "wd"))
        nodes[-1] = helper.make_node("Conv", ["r", "wc"], ["y0"], name="conv_out")
        nodes += [helper.make_node("Conv", ["cat", "wd"], ["y1"], name="conv_side"),
                  helper.make_node("Add", ["y0", "y1"], ["y"], name="add")]
    probe = _model(nodes[:3], inits[:2], [1, 16, 16, 16])
    probe.graph.output[0].name = "cat"
    cat = _run(probe, [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(16)])
    stats = dict(g=np.ones(16), beta=np.zeros(16), mean=cat.mean(axis=(0, 1, 3, 4)), var=cat.var(axis=(0, 1, 3, 4)))
    inits += [numpy_helper.from_array(v.astype(np.float32), k) for k, v in stats.items()]
    return _model(nodes, inits, [1, 8, 16, 16])


def _cosine(a, b) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _int8(model, tmp_path, monkeypatch, rule_on: bool):
    if not rule_on:
        monkeypatch.setattr(islands, "MAX_NOISE_RATIO", float("inf"))
        monkeypatch.setattr(islands, "MIN_RANGE_FRACTION", 0.0)
    calib = npy_folder(tmp_path / f"c{rule_on}", SHAPE, 12)
    profile = load_profile(str(write_profile(tmp_path, source=str(calib), samples=8, sensitivity=0)))
    return quantize(model, profile)


def test_bn_over_mixed_spread_concat_stays_float_and_that_is_what_fixes_it(tmp_path, monkeypatch):
    model = _dense_block()
    xs = [np.random.default_rng(100 + i).standard_normal(SHAPE).astype(np.float32) for i in range(6)]
    ref = _run(model, xs)
    q_on, res = _int8(model, tmp_path, monkeypatch, True)
    assert {"concat", "bn"} <= set(res.kept_float) and "conv_out" not in res.kept_float
    assert "normalizes" in res.kept_float["bn"]
    q_off, res_off = _int8(model, tmp_path, monkeypatch, False)
    assert "bn" not in res_off.kept_float
    on, off = _cosine(ref, _run(q_on, xs)), _cosine(ref, _run(q_off, xs))
    assert on > 0.999 and off < 0.99, (on, off)  # measured: on 0.9998, off 0.81
    assert any(n.op_type == "QuantizeLinear" for n in q_on.graph.node)  # the convs are still int8


def test_no_island_when_another_reader_needs_the_tensor_int8(tmp_path, monkeypatch):
    _, res = _int8(_dense_block(extra_reader=True), tmp_path, monkeypatch, True)
    assert "bn" not in res.kept_float and "concat" not in res.kept_float


def test_mixed_range_concat_of_pixels_and_scores_stays_float(tmp_path, monkeypatch):
    """A detector tail: box coordinates (x 320 px) next to sigmoid scores, concatenated into one output."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "wb"),
             numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "ws"),
             numpy_helper.from_array(np.array(320, np.float32), "px")]
    nodes = [helper.make_node("Conv", ["x", "wb"], ["b"], name="conv_box"),
             helper.make_node("Sigmoid", ["b"], ["bs"], name="sig_box"),
             helper.make_node("Mul", ["bs", "px"], ["box"], name="to_pixels"),
             helper.make_node("Conv", ["x", "ws"], ["s"], name="conv_score"),
             helper.make_node("Sigmoid", ["s"], ["score"], name="sig_score"),
             helper.make_node("Concat", ["box", "score"], ["y"], name="concat", axis=1)]
    model = _model(nodes, inits, [1, 8, 16, 16])
    xs = [np.random.default_rng(200 + i).standard_normal(SHAPE).astype(np.float32) for i in range(6)]
    ref = _run(model, xs)[:, :, 4:]  # [sample, batch, channel, ...]: the scores
    q_on, res = _int8(model, tmp_path, monkeypatch, True)
    assert "mixed-range Concat" in res.kept_float.get("concat", "")
    q_off, _ = _int8(model, tmp_path, monkeypatch, False)
    on, off = (_cosine(ref - ref.mean(), got[:, :, 4:] - ref.mean())
               for got in (_run(q_on, xs), _run(q_off, xs)))
    assert on > 0.99 and off < 0.9, (on, off)  # scores: measured on 0.9999, off 0.69


def test_unreadable_calibration_cache_means_no_ranges(tmp_path):
    bad = tmp_path / "ranges.json"
    bad.write_text("{not json")
    assert islands.read_ranges(bad) == {} and islands.read_ranges(tmp_path / "missing.json") == {}


def test_channel_noise_ratio_counts_exact_channels_as_lossless():
    x = np.zeros((2, 3, 4, 4))
    x[:, 0] = np.random.default_rng(0).uniform(0, 100, (2, 4, 4))  # loud channel sets the scale
    x[:, 2] = np.random.default_rng(1).uniform(0, 0.1, (2, 4, 4))  # quiet: < 1 step, all rounding
    ratio = islands.channel_noise_ratio(x, 0.0, 100.0)
    assert 0.3 < ratio <= 0.34  # (tiny loud-channel error + 0 for the all-zero channel + ~1 for the quiet) / 3
