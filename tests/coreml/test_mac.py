"""macOS: the runner is CoreML itself (coremltools predict) with the profile's compute units. Elsewhere only
the parts that do not need CoreML run: compute units recorded, pixels -> PIL image conversion."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import conv_model
from tests.coreml.helpers import backend, context, cosine, infer, reference

on_mac = pytest.mark.skipif(sys.platform != "darwin", reason="coremltools predict needs macOS")


def _ctx(tmp_path, units):
    ctx = context(tmp_path)
    runtime = ctx.profile.runtime.model_copy(update={"compute_units": units})
    return type(ctx)(**{**ctx.__dict__, "profile": ctx.profile.model_copy(update={"runtime": runtime})})


def test_compute_units_come_from_the_profile(tmp_path):
    art = backend().lower(infer(conv_model()), _ctx(tmp_path, "cpu_only"))
    assert art.details["compute_units"] == "cpu_only"


def test_pixels_become_the_pil_image_coreml_expects():
    pytest.importorskip("PIL")
    from edgec.runtimes.coreml import _MacPredict

    mac = _MacPredict.__new__(_MacPredict)  # no MLModel: only the conversion is under test
    px = np.random.default_rng(0).integers(0, 256, (1, 3, 4, 5)).astype(np.float32)
    rgb = np.asarray(mac._pil(px, "RGB"))
    assert rgb.shape == (4, 5, 3) and np.array_equal(rgb.transpose(2, 0, 1), px[0])
    bgr = np.asarray(mac._pil(px, "BGR"))  # planes are B, G, R: the RGB image carries them reversed
    assert np.array_equal(bgr.transpose(2, 0, 1), px[0][::-1])
    gray = np.asarray(mac._pil(px[:, :1] + 300, "GRAY"))
    assert gray.shape == (4, 5) and gray.max() == 255  # clipped


@on_mac
@pytest.mark.parametrize("units", ["cpu_only", "all"])
def test_predict_on_mac(tmp_path, units):
    import coremltools as ct

    model = infer(conv_model())
    art = backend().lower(model, _ctx(tmp_path, units))
    runner = backend().runner(art, 1)
    assert runner.name.startswith("coreml") and runner.latency_meaningful
    assert runner.inner.model.compute_unit == {"cpu_only": ct.ComputeUnit.CPU_ONLY, "all": ct.ComputeUnit.ALL}[units]
    feeds = {"images": np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)}
    assert cosine(runner.run(feeds)["logits"], reference(model, feeds)["logits"]) > 0.999
