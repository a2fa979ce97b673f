"""The light model zoo (random weights) lowers, saves, reloads, and matches ONNX Runtime.

Numbers compared: cosine of the outputs and of the difference of two inputs' outputs (deep random
nets send all inputs the same way; the difference exposes layout and padding mistakes).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgec.graph.prepare import prepare
from edgec.samples import randomized
from edgec.validate.inputs import input_specs, random_inputs
from tests.coreml.helpers import HAVE_RUNTIME, backend, cosine, lower, mil_spec, reference

FAST = ["squeezenet", "shufflenet"]
SLOW = ["inception_v1", "inception_v2", "densenet121", "resnet50", "alexnet", "vgg19", "zfnet512"]
MODELS = FAST + [pytest.param(m, marks=pytest.mark.slow) for m in SLOW]


def _prepared(name: str) -> onnx.ModelProto:
    return prepare(onnx.load(str(randomized(name))), {}, name).model


def check_numerics(model, art, min_cos: float) -> dict[str, float]:
    feeds = random_inputs(input_specs(model), seed=0, samples=2)
    runner = backend().runner(art, 1)
    ref = [reference(model, f) for f in feeds]
    got = [runner.run(f) for f in feeds]
    worst = {}
    for out in ref[0]:
        c = min(cosine(got[i][out], ref[i][out]) for i in range(2))
        d = cosine(got[0][out] - got[1][out], ref[0][out] - ref[1][out])
        assert np.all(np.isfinite(got[0][out]))
        assert c >= min_cos and d >= min_cos, (out, c, d)
        worst[out] = min(c, d)
    return worst


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_light_model(name, precision, tmp_path):
    model = _prepared(name)
    art = lower(model, tmp_path, name=name, precision=precision)
    spec = mil_spec(art.path)  # reloads from disk
    assert spec.WhichOneof("Type") == "mlProgram"
    assert len(spec.description.output) == len(model.graph.output)
    if not HAVE_RUNTIME:
        pytest.skip("lowered and reloaded; no CoreML runtime or MIL interpreter here for numerics")
    overflow_decided = bool(art.details["fp16_overflow_tensors"])
    check_numerics(model, art, 0.9999 if precision == "fp32" else (0.99 if overflow_decided else 0.999))
