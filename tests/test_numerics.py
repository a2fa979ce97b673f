import numpy as np

from edgec.runtimes.numerics import compare, cosine


def _pair(a, b):
    return [{"y": a[0]}, {"y": a[1]}], [{"y": b[0]}, {"y": b[1]}]


def test_identical_outputs_pass():
    x = [np.arange(10, dtype=np.float32), np.arange(10, dtype=np.float32)[::-1].copy()]
    ref, act = _pair(x, x)
    r = compare(ref, act, "rt", min_cosine=0.9999)
    assert r.passed and r.outputs["y"].max_abs == 0 and abs(r.outputs["y"].cosine - 1.0) < 1e-12


def test_difference_cosine_catches_what_plain_cosine_misses():
    """Two outputs dominated by one common direction: a swapped detail passes plain cosine but not delta cosine."""
    base = np.full(100, 50.0)
    d1, d2 = np.zeros(100), np.zeros(100)
    d1[0], d2[1] = 1.0, 1.0
    ref = [base + d1, base + d2]
    act = [base + d2, base + d1]  # the detail went to the wrong place (like a layout bug)
    r = compare(*_pair(ref, act), "rt", min_cosine=0.999)
    assert r.outputs["y"].cosine > 0.999
    assert r.outputs["y"].delta_cosine < 0
    assert not r.passed and "difference" in r.message


def test_nan_fails_even_when_cosine_is_undefined():
    ref = [np.ones(4), np.zeros(4)]
    act = [np.array([1, 1, np.nan, 1.0]), np.zeros(4)]
    r = compare(*_pair(ref, act), "rt", min_cosine=0.5)
    assert not r.passed and not r.outputs["y"].finite


def test_max_abs_threshold_and_missing_output():
    ref = [np.ones(4), np.zeros(4)]
    act = [np.ones(4) + 0.1, np.zeros(4) + 0.1]
    assert not compare(*_pair(ref, act), "rt", min_cosine=0.0, max_abs=0.01).passed
    r = compare([{"y": ref[0]}], [{"z": ref[0]}], "rt", min_cosine=0.0)
    assert not r.passed and "missing" in r.message


def test_cosine_edge_cases():
    assert cosine(np.zeros(3), np.zeros(3)) == 1.0
    assert cosine(np.zeros(3), np.ones(3)) == 0.0
