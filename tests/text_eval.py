"""Embedding agreement of a built text encoder with fp32 ONNX Runtime on real sentences (tests and bench share it).

    cos = embedding_cosines(outcome, held_out_feeds(60))   # {target: [cosine per sentence]}
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgec.lower.backend import get_backend
from edgec.runtimes.host_ort import OrtRunner
from tests.sentences import sentences
from tests.text_zoo import SEQ_LEN, text_model, tokenizer

CALIB_SENTENCES = 16  # the first sentences are for calibration-style uses; evaluation skips them


def held_out_feeds(n: int) -> list[dict[str, np.ndarray]]:
    tok = tokenizer()
    feeds = []
    for s in sentences(n, skip=CALIB_SENTENCES):
        ids, mask = tok.encode(s, SEQ_LEN)
        feeds.append({"input_ids": ids, "attention_mask": mask})
    return feeds


def _embed(runner, feeds) -> np.ndarray:
    return np.stack([np.asarray(runner.run(f)["embedding"], np.float64).reshape(-1) for f in feeds])


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def embedding_cosines(outcome, feeds) -> dict[str, np.ndarray]:
    """Per target of a build outcome: the cosine of each sentence's embedding to fp32 ONNX Runtime's."""
    ref = _embed(OrtRunner(text_model(), threads=1), feeds)
    out = {}
    for a in outcome.result.artifacts:
        runner = get_backend(a.artifact.format).runner(replace(a.artifact, path=a.final_path), 1)
        out[a.artifact.target] = _cos(_embed(runner, feeds), ref)
    return out
