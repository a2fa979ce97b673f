"""Torch-exported mobile architectures (tests/zoo.py) lowered to CoreML match ONNX Runtime in the MIL interpreter.

fp32 compute: cosine and delta cosine >= 0.9999. fp16 compute: cosine >= 0.999, and the delta cosine may lose
what fp16 arithmetic itself loses on the net (ONNX Runtime running the same graph in fp16, minus 0.02).
"""

from __future__ import annotations

import onnx
import pytest

from edgec.prepare import prepare
from edgec.graph.inputs import input_specs, random_inputs
from tests.coreml.helpers import HAVE_RUNTIME, lower
from tests.coreml.test_light_models import _ort_fp16_delta_cosine, check_numerics
from tests.zoo import INPUT_NAME, INPUT_SHAPES, ZOO, zoo_model


@pytest.mark.skipif(not HAVE_RUNTIME, reason="no CoreML runtime or MIL interpreter for numerics")
@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_zoo_model_matches_ort(name, precision, tmp_path):
    path = zoo_model(name)
    model = prepare(onnx.load(path), {INPUT_NAME: list(INPUT_SHAPES[name])}, str(path)).model
    art = lower(model, tmp_path, name=name, precision=precision)
    if precision == "fp32":
        check_numerics(model, art, 0.9999, 0.9999)
        return
    ort16 = _ort_fp16_delta_cosine(model, random_inputs(input_specs(model), seed=0, samples=2))
    check_numerics(model, art, 0.999, {o: min(0.999, v - 0.02) for o, v in ort16.items()})
