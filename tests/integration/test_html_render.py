"""report.html renders in a real browser (headless Chromium): badge, table and SVG bars show up as pixels.

Needs Debian's chromium (CI: apt-get update && apt-get install -y --no-install-recommends chromium)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from edgec import api

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
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
