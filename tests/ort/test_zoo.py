"""Every torch-exported zoo model (tests/zoo.py) goes through the whole `build()` pipeline for ORT Mobile
(load, onnxsim, passes, ORT format, numerics against ONNX Runtime on the original, latency)."""

from __future__ import annotations

import json

import pytest

from edgec import api
from tests.zoo import ZOO, zoo_model


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_builds_and_matches(name, tmp_path):
    outcome = api.build(zoo_model(name), api.BuildOptions(target="ort-mobile", out_dir=tmp_path, model_name=name,
                                                          latency="off"))
    assert outcome.ok, outcome.result.artifacts[0].numerics
    art = json.loads((tmp_path / "manifest.json").read_text())["artifacts"][0]
    metrics = art["numerics"]["outputs"]["output"]
    assert metrics["cosine"] >= 0.9999 and metrics["delta_cosine"] >= 0.9999
