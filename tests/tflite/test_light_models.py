"""The random-weight light zoo lowered to TFLite matches ONNX Runtime in LiteRT (outputs and output deltas)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgec.prepare import prepare
from edgec.lower.tflite.convert import convert
from edgec.samples import randomized
from edgec.runtimes.host_litert import LiteRTRunner
from tests.tflite.helpers import cosine

FAST = ["squeezenet", "shufflenet", "inception_v1", "inception_v2", "densenet121", "resnet50"]
SLOW = ["alexnet", "vgg19", "zfnet512"]


def _check(name: str, tmp_path, fp16: bool = False, min_cos: float = 0.9999):
    path = randomized(name)
    model = onnx.load(path)
    inp = model.graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    prepared = prepare(model, {inp.name: shape}, str(path))
    res = convert(prepared.model, fp16=fp16)
    assert not res.problems, res.problems
    out = tmp_path / f"{name}.tflite"
    out.write_bytes(res.data)
    rng = np.random.default_rng(0)
    feeds = [{inp.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(2)]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ref = [dict(zip(names, sess.run(None, f))) for f in feeds]
    runner = LiteRTRunner(out, threads=2)
    got = [runner.run(f) for f in feeds]
    for k in names:
        assert got[0][k].shape == ref[0][k].shape
        assert cosine(ref[0][k], got[0][k]) >= min_cos, (name, k, cosine(ref[0][k], got[0][k]))
        d = cosine(ref[0][k] - ref[1][k], got[0][k] - got[1][k])
        assert d >= min_cos, (name, k, "delta", d)
    return res


@pytest.mark.parametrize("name", FAST)
def test_light_model_matches_ort(name, tmp_path):
    res = _check(name, tmp_path)
    # input boundary only; shufflenet's 16 channel shuffles are one NHWC transpose each
    assert res.op_histogram.get("TRANSPOSE", 0) <= (17 if name == "shufflenet" else 1), res.op_histogram


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_big_light_model_matches_ort(name, tmp_path):
    res = _check(name, tmp_path)
    assert res.op_histogram.get("TRANSPOSE", 0) == 1, res.op_histogram  # flatten -> FC weights permuted instead
