"""quantize.target: nodes go float, most sensitive first, until held-out samples meet the goal, or a
QuantizationError (exit 13) says the best reached; deterministic."""

import json
import subprocess
import sys

import numpy as np
import pytest
from onnx import numpy_helper

from edgec import api
from edgec.config.models import QuantTarget
from edgec.errors import CalibrationError, ConfigError, QuantizationError
from edgec.quantize.sensitivity import NodeSensitivity
from edgec.quantize.target import Score, search, split_held_out
from tests.quantize.helpers import classifier, npy_folder, save, write_profile

OUTLIER = 1000.0  # input channel 0's scale in the calibration data; conv1 ignores that channel
# conv1 reads the model input, so by default it stays float (quantize.float_input_layers) and the outlier never
# reaches int8; the search tests turn that off to make the search find conv1 itself, and keep int8 activations
# (the default, auto, would try int16 ones when int8 cannot meet the target: test_int16_activations.py)
SEARCH_ONLY = "  float_input_layers: false\n  activations: int8\n"


def _outlier_model(tmp_path):
    """conv1 reads input channel 0 with zero weights, and the samples put values ~1000x the others there: the input
    tensor's one int8 scale leaves the channels that matter ~0 levels, so all-int8 loses the signal; keeping conv1
    float also keeps its input float (no other reader), which restores it."""
    m = classifier(classes=20, seed=0)
    w1 = next(t for t in m.graph.initializer if t.name == "w1")
    w = numpy_helper.to_array(w1).copy()
    w[:, 0] = 0.0
    w1.CopyFrom(numpy_helper.from_array(w, "w1"))
    folder = tmp_path / "cal"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
        x[:, 0] *= OUTLIER
        np.save(folder / f"sample_{i:03d}.npy", x)
    return save(m, tmp_path / "outlier.onnx"), folder


def _build(model, tmp_path, profile, out="out", target="ort-mobile"):
    outcome = api.build(model, api.BuildOptions(target=target, out_dir=tmp_path / out, profile=str(profile),
                                                latency="off", validate=True))
    assert not outcome.failures, [f.error for f in outcome.failures]
    if target != "ort-mobile":
        return outcome.result.artifacts
    (a,) = outcome.result.artifacts
    return a


def test_met_with_every_node_int8(tmp_path):
    model = save(classifier(seed=1), tmp_path / "m.onnx")
    cal = npy_folder(tmp_path / "cal", [1, 3, 32, 32], 40)
    prof = write_profile(tmp_path, source=str(cal), samples=32, target="{min_cosine: 0.9}")
    q = _build(model, tmp_path, prof).artifact.details["quantize"]
    t = q["target"]
    assert t["float_nodes"] == [] and [s["action"] for s in t["steps"]] == ["start"]
    assert t["steps"][0]["cosine"] >= 0.9 and "8 held-out calibration sample(s)" in t["held_out"]
    assert q["calibration_samples"] == 24  # 32 calibration files, every 4th held out for the target


def test_met_after_keeping_the_sensitive_node_float(tmp_path):
    model, cal = _outlier_model(tmp_path)
    # conv1's weights are 2% of this small model's
    prof = write_profile(tmp_path, source=str(cal), samples=32,
                         target="{min_cosine: 0.99, max_float_weight_fraction: 0.05}", quantize_extra=SEARCH_ONLY)
    arts = _build(model, tmp_path, prof, target="all")  # every backend lowers the graph with conv1 float
    assert sorted(x.artifact.target for x in arts) == ["android", "ios", "ort-mobile"]
    a = next(x for x in arts if x.artifact.target == "ort-mobile")
    t = a.artifact.details["quantize"]["target"]
    start, *after = t["steps"]
    assert start["cosine"] < 0.9  # all int8: the signal is gone
    assert t["float_nodes"] == ["conv1"] and [s["node"] for s in after] == ["conv1"]
    assert after[-1]["cosine"] >= 0.99
    assert a.artifact.details["quantize"]["kept_float"]["conv1"].startswith("quantize.target")
    # conv2 keeps its compensated int8 rounding; conv1 ships float, so it is not counted (nor the FC: 24 samples)
    assert a.artifact.details["quantize"]["weights_rounded"] == 1
    assert any(n.startswith("quantize: target cosine >= 0.99 met") and "conv1" in n for n in a.artifact.notes)
    manifest = json.loads(next((tmp_path / "out").rglob("manifest.json")).read_text())
    assert "conv1" in json.dumps(manifest)


def test_two_builds_are_byte_identical(tmp_path):
    model, cal = _outlier_model(tmp_path)
    prof = write_profile(tmp_path, source=str(cal), samples=32,
                         target="{min_cosine: 0.99, max_float_weight_fraction: 0.05}", quantize_extra=SEARCH_ONLY)
    a = _build(model, tmp_path, prof, "one").final_path.read_bytes()
    b = _build(model, tmp_path, prof, "two").final_path.read_bytes()
    assert a == b


def test_cannot_be_met_exits_13_through_the_cli(tmp_path):
    model, cal = _outlier_model(tmp_path)
    prof = write_profile(tmp_path, source=str(cal), samples=32,
                         target="{min_cosine: 0.99, max_float_nodes: 0}", quantize_extra=SEARCH_ONLY)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "edgec.cli", "build", str(model), "--profile", str(prof),
                        "--out", str(out), "--latency", "off"], capture_output=True, text=True)
    assert r.returncode == QuantizationError.exit_code == 13, r.stderr + r.stdout
    text = " ".join((r.stderr + r.stdout).split())
    assert "quantize.target cannot be met" in text and "asks for cosine >= 0.99" in text
    assert "max_float_nodes=0" in text and "Try:" in text and "Traceback" not in text
    # its weights are fine: the same graph with every activation float meets the goal, and the message says so
    assert "its 8-bit weights reach" in text and "the activations hold the error" in text, text
    assert not list(out.rglob("*.ort"))  # no half-written artifact


def test_the_input_layer_stays_float_by_default_so_the_outlier_input_is_never_int8(tmp_path):
    """Without a target: conv1 reads the model input, stays float with its reason, and the outlier channel that
    wipes out all-int8 (above: cosine < 0.9) costs nothing."""
    model, cal = _outlier_model(tmp_path)
    prof = write_profile(tmp_path, source=str(cal), samples=32, sensitivity=0)
    q = _build(model, tmp_path, prof).artifact.details["quantize"]
    assert list(q["kept_float"]) == ["conv1"] and "reads model input 'x'" in q["kept_float"]["conv1"]
    assert q["cosine_final"] >= 0.99


# ---------------------------------------------------------------- the search on its own

def _ranked(*names):
    return [NodeSensitivity(n, "Conv", 1.0 - i / 10) for i, n in enumerate(names)]


def _measure(gain, calls=None):
    def measure(nodes):
        if calls is not None:
            calls.append(tuple(nodes))
        c = 0.9 + sum(gain[n] for n in nodes)
        return Score(top1=0.8 + 2 * sum(gain[n] for n in nodes), cosine=c)
    return measure


def test_search_takes_the_best_first_and_gives_back_what_the_goal_does_not_need():
    calls = []
    goal = QuantTarget(min_top1_agreement=0.99, candidates=4, max_float_nodes=4)
    # c alone helps most; after c, a is needed; b helps alone but the goal is met without it
    gain = {"a": 0.04, "b": 0.02, "c": 0.06, "d": 0.0}
    chosen, steps = search(_ranked("a", "b", "c", "d"), _measure(gain, calls), goal, "held")
    assert chosen == ["c", "a"] and [s.node for s in steps] == [None, "c", "a"]
    assert steps[-1].score.top1 >= 0.99
    assert len(calls) == len(set(calls))  # each configuration measured once


def test_search_gives_back_a_choice_a_later_one_made_unnecessary():
    goal = QuantTarget(min_cosine=0.95, candidates=3, max_float_nodes=3)

    def measure(nodes):  # a and b overlap (fix the same error): after c, b adds nothing the goal needs
        s = set(nodes)
        return Score(None, 0.9 + 0.03 * ("a" in s) + 0.025 * ("b" in s) + 0.022 * ("c" in s)
                     - 0.015 * ({"a", "b"} <= s))
    chosen, steps = search(_ranked("a", "b", "c"), measure, goal, "held")
    assert chosen == ["a", "c"] and [(s.action, s.node) for s in steps] == [
        ("start", None), ("float", "a"), ("float", "b"), ("float", "c"), ("int8 again", "b")]
    assert steps[-1].score.cosine >= 0.95


def test_search_error_names_the_best_reached_the_target_and_the_bound():
    goal = QuantTarget(min_top1_agreement=0.99, candidates=4, max_float_nodes=1)
    with pytest.raises(QuantizationError) as e:
        search(_ranked("a", "b", "c"), _measure({"a": 0.04, "b": 0.02, "c": 0.06}), goal, "9 held-out samples")
    msg = str(e.value)
    assert "at best top-1 agreement 0.920" in msg and "1 node(s) float (c)" in msg
    assert "top-1 agreement >= 0.99" in msg and "max_float_nodes=1" in msg and "9 held-out samples" in msg


def test_held_out_split_is_every_kth_file_and_needs_two():
    rest, held = split_held_out(list(range(12)), 0.25)
    assert held == [3, 7, 11] and rest == [0, 1, 2, 4, 5, 6, 8, 9, 10]
    with pytest.raises(CalibrationError, match="held_out_fraction"):
        split_held_out(list(range(5)), 0.25)


def test_target_needs_a_goal(tmp_path):
    from edgec.config.loader import load_profile

    with pytest.raises(ConfigError, match="min_top1_agreement"):
        load_profile(str(write_profile(tmp_path, target="{held_out_fraction: 0.2}")))


# ---------------------------------------------------------------- calibration.method: auto

def test_auto_calibration_takes_the_range_that_clips_a_rare_outlier(tmp_path):
    """One spike of 1000 in one of 64 calibration samples: minmax (and here entropy) spend the input's range on it,
    leaving the N(0, 1) values ~1 level; percentile clips it, and `auto` measures that and takes its range."""
    from edgec.quantize import int8
    from edgec.quantize.calibration import StreamReader, open_source
    from edgec.graph.inputs import input_specs
    from edgec.quantize.range_choice import choose_ranges
    from edgec.quantize.islands import read_ranges

    model = classifier(seed=2)
    folder = npy_folder(tmp_path / "cal", [1, 3, 32, 32], 64)
    x = np.load(folder / "sample_005.npy")
    x[0, 1, 7, 7] = 1000.0
    np.save(folder / "sample_005.npy", x)
    cset = open_source(str(folder), input_specs(model), {}, 8)
    feeds = [cset.load(i) for i in range(4)]
    cache = tmp_path / "ranges.json"
    chosen = choose_ranges(model, lambda m, p: int8.quantize_static_qdq(
        model, StreamReader(cset, range(64)), m, True, [], p, tmp_path), feeds, tmp_path, cache)
    assert chosen["x"] == "percentile" and set(chosen.values()) <= {"minmax", "percentile", "entropy"}
    assert read_ranges(cache)["x"][1] < 100  # the merged cache holds the clipped range
    qdq = int8.quantize_static_qdq(model, None, "minmax", True, [], cache, tmp_path)  # loads as a MinMax cache
    assert any(n.op_type == "QuantizeLinear" for n in qdq.graph.node)


def test_auto_calibration_in_a_build(tmp_path):
    model = save(classifier(seed=1), tmp_path / "m.onnx")
    cal = npy_folder(tmp_path / "cal", [1, 3, 32, 32], 40)
    prof = write_profile(tmp_path, source=str(cal), samples=32, method="auto")
    q = _build(model, tmp_path, prof).artifact.details["quantize"]
    assert q["method"].startswith("auto (minmax ") and q["method"].endswith(" tensors)")


def test_target_applies_to_int8_only(tmp_path):
    model = save(classifier(seed=1), tmp_path / "m.onnx")
    prof = write_profile(tmp_path, mode="fp16", target="{min_cosine: 0.9}")
    with pytest.raises(ConfigError, match="quantize mode is fp16"):
        api.build(model, api.BuildOptions(target="ort-mobile", out_dir=tmp_path / "out", profile=str(prof),
                                          latency="off", validate=False))


def test_search_tries_a_weighted_node_whose_ranked_local_error_is_zero():
    # P-Net's conv2d_2: its input (behind a float PRelu) carries more error than its output, so it ranks 0, yet
    # its int8 weights are what float removes; a weightless zero (MaxPool) is still skipped
    ranked = [NodeSensitivity("a", "Conv", 0.01), NodeSensitivity("conv", "Conv", 0.0),
              NodeSensitivity("pool", "MaxPool", 0.0)]
    tried = []

    def measure(nodes):
        tried.append(tuple(nodes))
        return Score(None, 0.9 + 0.08 * ("conv" in nodes) + 0.01 * ("a" in nodes))
    goal = QuantTarget(min_cosine=0.97, candidates=4, max_float_nodes=2, max_float_weight_fraction=1.0)
    chosen, _ = search(ranked, measure, goal, "held", {"a": 100, "conv": 100, "pool": 0})
    assert chosen == ["conv"] and ("pool",) not in tried


def test_target_note_shows_the_figure_the_goal_is_stated_in():
    from edgec.quantize.stage import QuantResult
    steps = [{"action": "start", "node": None, "top1": 0.9, "cosine": 0.99},
             {"action": "float", "node": "c", "top1": 0.95, "cosine": 0.998}]
    r = QuantResult(mode="int8", precision="int8", data="d", measured=True, calibration_samples=4, method="minmax",
                    per_channel=True)
    r.target = {"goal": "cosine >= 0.9975", "held_out": "h", "float_nodes": ["c"], "float_weight_fraction": 0.1,
                "measurements": 2, "steps": steps}
    (line,) = [n for n in r.notes() if "target" in n]
    assert line.endswith("all int8 0.99 -> c 0.998")
    r.target["goal"] = "top-1 agreement >= 0.95"
    (line,) = [n for n in r.notes() if "target" in n]
    assert line.endswith("all int8 0.9 -> c 0.95")


def test_top1_orders_the_search_on_outputs_with_many_rows_per_sample():
    # "noise" moves the cosine (unlikely classes of a [1, T, 6625] Softmax), "real" the top-1 of the T steps
    def measure(rows):
        def m(nodes):
            s = set(nodes)
            return Score(0.90 + 0.01 * ("noise" in s) + 0.06 * ("real" in s),
                         0.90 + 0.05 * ("noise" in s) + 0.01 * ("real" in s), rows)
        return m
    goal = QuantTarget(min_top1_agreement=0.95, candidates=2, max_float_nodes=1)
    chosen, steps = search(_ranked("noise", "real"), measure(40), goal, "held")
    assert chosen == ["real"] and steps[-1].score.top1 >= 0.95
    # one row per sample (a classifier's top-1 moves in whole samples): the cosine still orders, as on Lite0
    with pytest.raises(QuantizationError, match=r"1 node\(s\) float \(noise\)"):
        search(_ranked("noise", "real"), measure(1), goal, "held")
    # a cosine in the goal keeps the cosine first
    both = QuantTarget(min_top1_agreement=0.95, min_cosine=0.9, candidates=2, max_float_nodes=1)
    with pytest.raises(QuantizationError, match=r"1 node\(s\) float \(noise\)"):
        search(_ranked("noise", "real"), measure(40), both, "held")


def test_score_counts_the_top1_rows_per_sample_of_a_per_step_softmax():
    import onnx
    from onnx import TensorProto, helper

    from edgec.quantize.target import score
    from edgec.runtimes.outputs import output_kinds
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], "ctc",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12, 30])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 12, 30])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 12, 30)).astype(np.float32)} for _ in range(3)]
    ref = [{"y": np.exp(f["x"]) / np.exp(f["x"]).sum(-1, keepdims=True)} for f in feeds]
    s = score(ref, m, feeds, output_kinds(m))
    assert s.rows == 12 and s.top1 == 1.0 and s.cosine > 0.9999
    onnx.checker.check_model(m)
