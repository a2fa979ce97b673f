"""Issue 19's classifier bar with 16-bit activations: trained EfficientNet-Lite1 (tests/trained_zoo.py) built with
`quantize: {activations: int16}` (int8 weights, int16 activations; android runs them float on the int8 weights, its
default) for android, ios and ort-mobile, calibrated on the calibration photos' crops and measured on crops of OTHER
photos: top-1 agreement with fp32 >= 0.98 on every target, and the TFLite / ORT files <= 0.30x of fp32.

Measured 2026-12-07 (bench/quantize_trained.py): 0.990 / 0.990 / 0.990 (android / ios / ort-mobile), size 0.27 /
0.29; int8 activations: 0.938 / 0.990 / 0.917. Lite0 does not reach it (0.958 everywhere: its weights hold the
rest of the error, docs/quantization.md), which is why this is Lite1 only. Slow: two builds of ~1 min.
"""

import numpy as np
import pytest

from edgec import api
from edgec.runtimes.host_ort import OrtRunner
from tests.quantize.test_trained_real import BAR, _agreement, _top1

pytestmark = pytest.mark.slow
MODEL = "efficientnet_lite1"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tests.photos import CALIB_PHOTOS, EVAL_PHOTOS, photo_inputs
    from tests.quantize.helpers import target_profile
    from tests.trained_zoo import input_shape, trained_model

    model, size = trained_model(MODEL), input_shape(MODEL)[-1]
    tmp = tmp_path_factory.mktemp("trained_int16")
    (tmp / "calib").mkdir()
    for x, name in zip(*photo_inputs(CALIB_PHOTOS, size)):
        np.save(tmp / "calib" / f"{name}.npy", x)
    prof = target_profile(tmp, None, settings={"activations": "int16"})
    outcomes = {mode: api.build(model, api.BuildOptions(
        target="all", out_dir=tmp / mode, quantize=mode, calibration=str(tmp / "calib") if mode == "int8" else None,
        latency="off", validate=False, model_name=MODEL, profile=str(prof) if mode == "int8" else None))
        for mode in ("int8", "none")}
    for o in outcomes.values():
        assert not o.failures, [f"{f.target}: {f.error}" for f in o.failures]
    xs, _ = photo_inputs(EVAL_PHOTOS, size)
    sizes = {m: {a.artifact.target: a.final_path.stat().st_size for a in o.result.artifacts}
             for m, o in outcomes.items()}
    return _agreement(outcomes["int8"], xs, _top1(OrtRunner(model, threads=1), xs)), sizes


def test_lite1_int16_activations_meet_the_bar_on_every_target(built):
    agreement, sizes = built
    print(f"top-1 agreement vs fp32 on held-out photos: {agreement}; bytes: {sizes}")
    assert set(agreement) == {"android", "ios", "ort-mobile"}
    assert min(agreement.values()) >= BAR, agreement
    for target in ("android", "ort-mobile"):
        assert sizes["int8"][target] <= 0.30 * sizes["none"][target], (target, sizes)
