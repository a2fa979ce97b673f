"""bench/published_latency.yaml: every published figure carries its source, date and the source's own line,
names a built-in profile, and names an edgec model that exists (or none, then it stays out of the median)."""

from pathlib import Path

import pytest
import yaml

from edgec.config.loader import builtin_profile_names
from edgec.samples import LIGHT_MODELS
from tests.zoo import INPUT_SHAPES

DATA = Path(__file__).resolve().parents[2] / "bench" / "published_latency.yaml"
FIGURES = yaml.safe_load(DATA.read_text())["figures"]


@pytest.mark.parametrize("fig", FIGURES, ids=[f"{f['profile']}-{f.get('model') or f['published_model']}" for f in FIGURES])
def test_figure_is_sourced_and_buildable(fig):
    for key in ("device", "published_model", "runtime", "precision", "source", "date", "quote"):
        assert str(fig.get(key) or "").strip(), f"{key} missing"
    assert fig["profile"] in builtin_profile_names()
    assert float(fig["ms"]) > 0
    assert str(fig["ms"]) in fig["quote"]  # the number is the source's, as printed there
    if fig.get("model") is None:
        assert fig.get("compare") is False  # nothing to estimate: cannot count in the median
    else:
        assert fig["model"] in LIGHT_MODELS or fig["model"] in INPUT_SHAPES
        if fig.get("input"):
            assert len(fig["input"]) == 4 and fig["input"][:2] == [1, 3]


def test_at_least_six_cpu_figures_count():
    counted = [f for f in FIGURES if f.get("model") and f.get("compare", True)]
    assert len(counted) >= 6
