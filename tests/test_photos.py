"""The real-photo test data (tests/photos.py): pinned photos, deterministic crops, disjoint calibration/evaluation."""

import numpy as np

from tests.photos import CALIB_PHOTOS, EVAL_PHOTOS, MEAN, PHOTOS, STD, VARIANTS, photo_inputs


def test_photo_crops_are_deterministic_normalized_and_split_by_photo():
    assert not set(CALIB_PHOTOS) & set(EVAL_PHOTOS) and set(CALIB_PHOTOS) | set(EVAL_PHOTOS) == set(PHOTOS)
    assert len(EVAL_PHOTOS) * len(VARIANTS) >= 50 and len(PHOTOS) * len(VARIANTS) >= 70
    a, names = photo_inputs(["chelsea", "camera"], 64)
    b, _ = photo_inputs(["chelsea", "camera"], 64)
    assert len(a) == 2 * len(VARIANTS) and names[0] == "chelsea_0"
    assert all(x.shape == (1, 3, 64, 64) and x.dtype == np.float32 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # mirrored variant 1 is variant 0 flipped; the grayscale photo gives equal channels before normalization
    assert np.array_equal(a[1], a[0][..., ::-1])
    gray = a[len(VARIANTS)][0] * STD[:, None, None] + MEAN[:, None, None]
    assert np.allclose(gray[0], gray[1], atol=1e-5) and np.allclose(gray[1], gray[2], atol=1e-5)
    # ImageNet normalization: pixel values in [0, 1] map to [-mean/std, (1-mean)/std]
    assert min(float(x.min()) for x in a) >= float((-MEAN / STD).min()) - 1e-5
    assert len({x.tobytes() for x in a}) == len(a)  # every crop differs


def test_target_held_out_variants_are_deterministic_distinct_and_never_an_evaluation_photo():
    from tests.quantize.helpers import TARGET_VARIANTS, target_inputs, target_variants

    assert target_variants() == TARGET_VARIANTS and target_variants(32)[:8] == TARGET_VARIANTS
    assert target_variants(32) == target_variants(32) and len(set(target_variants(32))) == 32
    assert not set(VARIANTS) & set(target_variants(32))  # not a calibration crop again
    a, names = target_inputs(["chelsea", "camera"], 48, 24)
    b, _ = target_inputs(["chelsea", "camera"], 48, 24)
    assert len(a) == 48 and names[0] == "t_chelsea_00" and len(set(names)) == 48
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len({x.tobytes() for x in a}) == len(a)
    # the first 8 are the plain crops/flips; rotation + colour jitter stay within the normalized pixel range
    plain, _ = photo_inputs(["chelsea"], 48, TARGET_VARIANTS)
    assert all(np.array_equal(x, y) for x, y in zip(a[:8], plain))
    lo, hi = float((-MEAN / STD).min()) - 1e-5, float(((1 - MEAN) / STD).max()) + 1e-5
    assert all(lo <= float(x.min()) and float(x.max()) <= hi for x in a)
