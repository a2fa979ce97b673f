"""The sequence zoo (text encoder, streaming VAD, speech encoder, DETR head, decoder step with a KV cache) on every
target: each builds and matches ONNX Runtime on the original. The streaming VAD runs a 100-chunk stream with its state
carried between chunks, every chunk compared."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest

from edgec import api
from edgec.lower.backend import get_backend
from tests.zoo import SEQ_ZOO, zoo_model

TARGETS = ["ort-mobile", "android", "ios"]
VALUES = {"streaming_vad": ["sr=16000"]}
MIN_COSINE = {"ort-mobile": 0.9999, "android": 0.9999, "ios": 0.999}  # ios: fp16 compute in the MIL interpreter


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", SEQ_ZOO)
def test_builds_and_matches(name, target, tmp_path):
    opts = api.BuildOptions(target=target, out_dir=tmp_path, input_values=VALUES.get(name, []), latency="off")
    outcome = api.build(zoo_model(name), opts)
    assert outcome.ok, outcome.result.artifacts[0].numerics
    art = json.loads((tmp_path / "manifest.json").read_text())["artifacts"][0]
    for out, m in art["numerics"]["outputs"].items():
        assert m["cosine"] >= MIN_COSINE[target], (out, m)


@pytest.mark.parametrize("target", TARGETS)
def test_streaming_vad_carries_its_state_over_100_chunks(target, tmp_path):
    path = zoo_model("streaming_vad")
    outcome = api.build(path, api.BuildOptions(target=target, out_dir=tmp_path, input_values=["sr=16000"],
                                               validate=False))
    art = outcome.result.artifacts[0]
    runner = get_backend(art.artifact.format).runner(replace(art.artifact, path=art.final_path), 1)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    state_ref = state_got = np.zeros((3, 1, 32), np.float32)
    sr = np.array(16000, np.int64)
    tol = 2e-2 if target == "ios" else 1e-4  # ios: fp16 compute
    worst = 0.0
    for chunk in range(100):
        x = (rng.standard_normal((1, 512)) * 0.1).astype(np.float32)
        prob_ref, state_ref = ref.run(None, {"x": x, "state": state_ref, "sr": sr})
        got = runner.run({"x": x, "state": state_got})
        prob_got, state_got = got["prob"], got["state_out"].astype(np.float32)
        err = max(float(np.abs(prob_got - prob_ref).max()), float(np.abs(state_got - state_ref).max()))
        worst = max(worst, err)
        assert err < tol, f"chunk {chunk}: max abs {err}"
    assert np.abs(state_ref).max() > 0.05  # the state really moves
