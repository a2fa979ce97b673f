"""Torch-exported zoo models (tests/zoo.py) lowered to TFLite match ONNX Runtime (the first run builds the zoo)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgec.prepare import prepare
from edgec.lower.tflite.convert import convert
from edgec.runtimes.host_litert import LiteRTRunner
from tests.tflite.helpers import cosine


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet18", "shufflenet_v2_x1_0",
                                  "squeezenet1_1", "transformer_block",
                                  "detection_head"])
def test_zoo_model_matches_ort(name, tmp_path):
    from tests.zoo import INPUT_SHAPES, zoo_model

    path = zoo_model(name)
    shape = list(INPUT_SHAPES[name])
    prepared = prepare(onnx.load(path), {"input": shape}, str(path))
    res = convert(prepared.model)
    assert not res.problems, res.problems
    out = tmp_path / f"{name}.tflite"
    out.write_bytes(res.data)
    rng = np.random.default_rng(0)
    feeds = [{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(2)]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = [sess.run(None, f)[0] for f in feeds]
    runner = LiteRTRunner(out, threads=2)
    got = [runner.run(f)["output"] for f in feeds]
    assert cosine(ref[0], got[0]) >= 0.9999
    assert cosine(ref[0] - ref[1], got[0] - got[1]) >= 0.9999
    if name.startswith(("mobilenet", "efficientnet")):
        assert res.op_histogram.get("TRANSPOSE", 0) <= 1, res.op_histogram
