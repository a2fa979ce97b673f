"""A quantize.target that cannot be met is searched once per build, not once per target: the three targets of
`--target all` share one prepared graph (one quantize key), and when preparing it fails the next target with that
key gets the same error instead of repeating the search (on PP-OCR rec one search is minutes)."""

import pytest

from edgec import api
from edgec.errors import QuantizationError
from tests.quantize.test_target import SEARCH_ONLY, _outlier_model
from tests.quantize.helpers import write_profile


def test_cannot_be_met_is_searched_once_for_all_targets(tmp_path, monkeypatch):
    import edgec.quantize.stage as stage

    calls = []
    search = stage.search
    monkeypatch.setattr(stage, "search", lambda *a, **k: calls.append(1) or search(*a, **k))
    model, cal = _outlier_model(tmp_path)
    prof = write_profile(tmp_path, source=str(cal), samples=32, target="{min_cosine: 0.99, max_float_nodes: 0}",
                         quantize_extra=SEARCH_ONLY)
    with pytest.raises(QuantizationError) as e:
        api.build(model, api.BuildOptions(target="all", out_dir=tmp_path / "out", profile=str(prof),
                                          latency="off", validate=False))
    assert "android, ios, ort-mobile: quantize.target cannot be met" in str(e.value), str(e.value)
    assert len(calls) == 1
