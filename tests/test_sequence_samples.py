"""The bundled sequence samples (`edgec build --sample text_encoder|streaming_audio`): byte-deterministic, they
really use their mask and state, and each builds for every target and matches ONNX Runtime."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from edgec.sequence_samples import SEQUENCE_SAMPLES, streaming_audio, text_encoder


@pytest.mark.parametrize("name", sorted(SEQUENCE_SAMPLES))
def test_the_same_seed_gives_the_same_bytes(name):
    make = SEQUENCE_SAMPLES[name]
    assert make(0).SerializeToString() == make(0).SerializeToString()
    assert make(0).SerializeToString() != make(1).SerializeToString()


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_text_encoder_pools_over_the_mask_only():
    sess = _session(text_encoder())
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1000, (1, 32)).astype(np.int64)
    mask = (np.arange(32) < 20).astype(np.int64)[None]
    types = np.zeros((1, 32), np.int64)
    emb = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    other_tail = ids.copy()
    other_tail[:, 20:] = rng.integers(0, 1000, 12)
    same = sess.run(None, {"input_ids": other_tail, "attention_mask": mask, "token_type_ids": types})[0]
    np.testing.assert_allclose(same, emb, atol=1e-5)  # padded tokens neither attend nor pool
    full = sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(mask), "token_type_ids": types})[0]
    assert np.abs(full - emb).max() > 1e-2


def test_streaming_audio_carries_state():
    sess = _session(streaming_audio())
    audio = (np.random.default_rng(0).standard_normal((1, 512)) * 0.1).astype(np.float32)
    state = np.zeros((2, 1, 64), np.float32)
    prob0, state1 = sess.run(None, {"audio": audio, "state": state})
    prob1, _ = sess.run(None, {"audio": audio, "state": state1})
    assert 0.0 < prob0.item() < 1.0 and np.abs(state1).max() > 0.05
    assert abs(prob1.item() - prob0.item()) > 1e-4  # the score depends on the carried state


@pytest.mark.parametrize("name", sorted(SEQUENCE_SAMPLES))
def test_sample_builds_for_every_target_and_matches(name, tmp_path):
    out = tmp_path / "dist"
    run = subprocess.run([sys.executable, "-m", "edgec.cli", "build", "--sample", name, "--target", "all",
                          "--out", str(out), "--latency", "off"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(a["target"] for a in manifest["artifacts"]) == ["android", "ios", "ort-mobile"]
    for art in manifest["artifacts"]:
        assert art["passed"] and art["numerics"]["passed"], (art["target"], art["numerics"])
        for output, m in art["numerics"]["outputs"].items():
            assert m["cosine"] >= (0.999 if art["target"] == "ios" else 0.9999), (art["target"], output, m)
