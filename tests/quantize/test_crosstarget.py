"""The cross-target table: every quantized artifact of one build on the same held-out inputs."""

import json

import numpy as np
import pytest

from edgec import api
from edgec.quantize.accuracy import OUTPUTS_KEY
from edgec.quantize.crosstarget import cross_target, markdown
from edgec.quantize.stage import QuantResult

from .helpers import classifier, npy_folder, save

pytestmark = pytest.mark.filterwarnings("ignore::edgec.quantize.calibration.CalibrationWarning")


def _quant(refs, outs: dict) -> QuantResult:
    q = QuantResult(mode="int8", precision="int8", data="test data", measured=True, _holdout=[5, 6, 7])
    q.reference_cache["outputs"] = refs
    q.reference_cache[OUTPUTS_KEY] = outs
    return q


def test_table_flags_a_target_that_disagrees():
    rng = np.random.default_rng(0)
    refs = [{"y": rng.standard_normal((1, 20)).astype(np.float32)} for _ in range(10)]
    near = [{"y": r["y"] + 0.01} for r in refs]  # same argmax as fp32
    bad = [{"y": r["y"] if i < 5 else -r["y"]} for i, r in enumerate(refs)]  # half the rows flip class
    q = _quant(refs, {"a": near, "b": [dict(x) for x in near], "c": bad})
    block = cross_target([("a", q), ("b", q), ("c", q)])
    e = block["outputs"]["y"]
    assert block["targets"] == ["a", "b", "c"] and block["samples"] == 10
    assert e["vs_fp32"]["a"]["top1"] == 1.0 and e["vs_fp32"]["c"]["top1"] == 0.5
    ab = next(p for p in e["pairs"] if (p["a"], p["b"]) == ("a", "b"))
    assert ab["top1"] == 1.0 and ab["cosine"] == pytest.approx(1.0)
    assert e["min_top1_pairwise"] == 0.5 and e["min_top1_vs_fp32"] == 0.5
    text = "\n".join(markdown(block))
    assert "| c | 0.500 /" in text and "at least as well" in text


def test_pairs_worse_than_fp32_are_called_out():
    rng = np.random.default_rng(1)
    # each target flips a different sample: 0.9 vs fp32 each, but only 0.8 with each other
    refs = [{"y": rng.standard_normal((1, 12)).astype(np.float32)} for _ in range(10)]
    a = [{"y": r["y"] if i != 0 else -r["y"]} for i, r in enumerate(refs)]
    b = [{"y": r["y"] if i != 1 else -r["y"]} for i, r in enumerate(refs)]
    q = _quant(refs, {"a": a, "b": b})
    # two prepared graphs (two QuantResults) on the same held-out inputs group into one table
    assert cross_target([("a", _quant(refs, {"a": a})), ("b", _quant(refs, {"b": b}))]) == cross_target(
        [("a", q), ("b", q)])
    other = _quant(refs, {"b": b})
    other._holdout = [1, 2, 3]  # other inputs: no table
    assert cross_target([("a", _quant(refs, {"a": a})), ("b", other)]) is None
    e = cross_target([("a", q), ("b", q)])["outputs"]["y"]
    assert e["min_top1_vs_fp32"] == 0.9 and e["min_top1_pairwise"] == 0.8
    assert not e["targets_agree_at_least_as_well"]
    assert "LESS well" in "\n".join(markdown(cross_target([("a", q), ("b", q)])))


def test_single_target_has_no_table():
    refs = [{"y": np.ones((1, 20), np.float32)}]
    assert cross_target([("a", _quant(refs, {"a": refs}))]) is None


def test_build_all_targets_int8_writes_the_table(tmp_path):
    calib = npy_folder(tmp_path / "calib", [1, 3, 32, 32], 16)
    outcome = api.build(save(classifier(), tmp_path / "c.onnx"), api.BuildOptions(
        target="all", out_dir=tmp_path / "out", quantize="int8", calibration=str(calib)))
    built = [a.artifact.target for a in outcome.result.artifacts]
    assert {"ort-mobile", "ios"} <= set(built), outcome.failures
    block = json.loads((tmp_path / "out" / "manifest.json").read_text())["cross_target"]
    assert block["targets"] == built and block["measured"]
    e = block["outputs"]["logits"]
    assert set(e["vs_fp32"]) == set(built)
    assert len(e["pairs"]) == len(built) * (len(built) - 1) // 2
    for row in list(e["vs_fp32"].values()) + e["pairs"]:
        assert row["top1"] is not None and row["cosine"] > 0.99
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Quantized (int8) artifacts across targets" in report
    # every artifact states the estimator's fp32 -> int8 prediction for its own profile's device
    for a in json.loads((tmp_path / "out" / "manifest.json").read_text())["artifacts"]:
        p = a["details"]["quantize"]["predicted_speedup"]
        assert p["profile"] == a["profile"] and p["fp32_ms"] > 0 and p["quantized_ms"] > 0
        assert p["speedup"] == pytest.approx(p["fp32_ms"] / p["quantized_ms"], rel=1e-2)
        if a["target"] == "ios":  # iOS16 has no int8 activation ops: float activations, an fp16 program
            assert a["details"]["int8_activations"] == "float" and a["details"]["compute_precision"] == "fp16"
            assert p["unit"] == "ane", p
    assert report.count("quantize: latency estimate on") == len(built)
