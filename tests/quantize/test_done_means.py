"""Issue 5 "done means" on a torch export: one `--target all --quantize int8` build calibrated on structured
synthetic images; ORT, TFLite and CoreML artifacts each close to fp32 on held-out images, and close to each other.
Slow (~40 s): bench/quantize.py has the full table (more models, 100 held-out images, latency)."""

import json

import numpy as np
import pytest

from edgec import api
from edgec.quantize.synthetic import synthetic_images

pytestmark = pytest.mark.slow


def test_resnet18_int8_all_targets_agree(tmp_path):
    from tests.zoo import INPUT_SHAPES, zoo_model

    calib = tmp_path / "calib"
    calib.mkdir()
    for i, x in enumerate(synthetic_images(list(INPUT_SHAPES["resnet18"]), 0, 24 + 32)):
        np.save(calib / f"img_{i:04d}.npy", x[None])
    outcome = api.build(zoo_model("resnet18"), api.BuildOptions(
        target="all", out_dir=tmp_path / "out", quantize="int8", calibration=str(calib), latency="off"))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    # NOT asserted: outcome.ok. The default profiles gate int8 top-1 at 0.9, and this random-weight export has
    # near-tied logits (bench: 16% of images with a top-2 margin < 0.05 std), so top-1 on ~11 held-out images
    # is 0.73-0.82 here while cosine is 0.998; on images where fp32 is decisive top-1 agreement is 1.0 (bench).
    for a in outcome.result.artifacts:
        # a failure is top-1 only; the layer diagnosis after it must find no divergent tensor
        parts = [p for p in a.numerics.message.split("; ") if p and not p.startswith("no intermediate tensor")]
        assert all("top-1" in p for p in parts), a.numerics.message
    data = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(a["target"] for a in data["artifacts"]) == ["android", "ios", "ort-mobile"]
    for a in data["artifacts"]:
        assert a["precision"] == "int8" and a["details"]["quantize"]["accuracy_measured"]
    block = data["cross_target"]["outputs"]["output"]
    assert data["cross_target"]["samples"] >= 8
    # measured here: cosine vs fp32 ~0.9985 for each target; pairwise >= 0.9978 (CoreML's fp16 compute the farthest)
    for v in block["vs_fp32"].values():
        assert v["cosine"] > 0.995
    for p in block["pairs"]:
        assert p["cosine"] > 0.995
    # int8 artifacts about 4x smaller than fp32 (CoreML's fp32 package already holds fp16 weights)
    sizes = {a["target"]: a["bytes"] for a in data["artifacts"]}
    assert sizes["android"] < 14e6 and sizes["ort-mobile"] < 14e6  # fp32: 46.8 MB
