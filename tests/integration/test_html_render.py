"""report.html renders in a real browser (headless Chromium): badge, table and SVG bars show up as pixels.

Needs Debian's chromium (CI: apt-get update && apt-get install -y --no-install-recommends chromium)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from edgec import api

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (apt-get update && apt-get install -y --no-install-recommends chromium)",
)


def _screenshot(html, png, tmp_path):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={png}", "--window-size=1200,1600",
           html.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def _pixels_near(img: np.ndarray, hex_colour: str, tol: int = 12) -> int:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img[..., :3].astype(int) - rgb).max(axis=-1) <= tol).sum())


@needs_chromium
def test_report_html_renders_in_headless_chromium(conv_model_path, tmp_path):
    from PIL import Image

    out = tmp_path / "dist"
    outcome = api.build(conv_model_path, api.BuildOptions(target="ort-mobile", out_dir=out))
    assert outcome.ok and outcome.html_path == out / "report.html"
    png = tmp_path / "shot.png"
    _screenshot(outcome.html_path, png, tmp_path)
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[:2] == (1600, 1200)
    assert _pixels_near(img, "#1a7f37") > 500, "green PASSED badge / numerics bars not drawn"
    assert _pixels_near(img, "#0969da") > 500, "blue size/latency bars (inline SVG) not drawn"
    # not a blank page: a good share of the page is non-white (text, tables, charts)
    assert (img.min(axis=-1) < 200).mean() > 0.02


@pytest.fixture(scope="module")
def int8_build(tmp_path_factory):
    from conftest import conv_model

    tmp = tmp_path_factory.mktemp("int8")
    import onnx

    onnx.save(conv_model(), str(tmp / "conv.onnx"))
    outcome = api.build(tmp / "conv.onnx", api.BuildOptions(target="all", out_dir=tmp / "dist", quantize="int8",
                                                            calibration="random", latency="estimate"))
    assert outcome.ok, outcome.failures
    return outcome


def test_int8_report_html_shows_its_own_gate_and_what_report_md_shows(int8_build):
    html = int8_build.html_path.read_text()
    md = int8_build.result.report_path.read_text()
    assert "int8 gate: cosine 0.99<" in html and "gate: cosine 0.999<" not in html  # not fp32's line
    assert 'fill="#cf222e"' not in html  # a PASSED build has no red bar
    assert "method: roofline" in html and "method: roofline" in md
    assert "slowest ops" in html and "| op | type | est. ms" in md
    assert "artifacts across targets" in html and "artifacts across targets" in md


@needs_chromium
def test_int8_report_renders_without_red_bars(int8_build, tmp_path):
    """A PASSED int8 build in a real browser: every numerics bar is measured against the int8 gate, so none is
    red."""
    from PIL import Image

    outcome = int8_build
    png = tmp_path / "shot.png"
    _screenshot(outcome.html_path, png, tmp_path)
    img = np.asarray(Image.open(png).convert("RGB"))
    assert _pixels_near(img, "#1a7f37") > 500  # green badge and bars
    # red appears only as the thin dashed gate lines, never as a bar (a red bar alone is > 1000 pixels)
    assert _pixels_near(img, "#cf222e") < 1000


def test_each_bar_is_held_to_its_own_gate(int8_build):
    """Numbers a PASSED int8 build really has (resnet-like): delta cosine 0.9 (int8 gate 0.5) and, for a measured
    classifier, cosine 0.98 with top-1 agreement deciding. The old page drew both red against fp32-style lines."""
    import copy
    import json

    from edgec.package.html import render

    data = json.loads(int8_build.result.manifest_path.read_text())
    a = copy.deepcopy(data["artifacts"][0])
    a["numerics"]["outputs"] = {"logits": {**a["numerics"]["outputs"]["logits"], "cosine": 0.995,
                                           "delta_cosine": 0.9}}
    b = copy.deepcopy(a)
    b["target"] = "measured"
    b["details"]["quantize"]["accuracy_measured"] = True
    b["numerics"]["outputs"]["logits"].update(cosine=0.98, top1=0.95, top5=1.0)
    html = render({**data, "artifacts": [a, b]})
    assert 'fill="#cf222e"' not in html  # no red bar: every output met the gate it is held to
    assert "int8 gate: cosine 0.5<" in html and "int8 gate: cosine 0.99<" in html
    assert html.count('fill="#0969da"') >= 3  # size bars + the measured output's cosine bar (top-1 decides)
    assert "<th>top-1</th>" in html
