"""Content hashes of files and folders (an .mlpackage is a folder)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names + contents, sorted)."""
    path = Path(path)
    if not path.is_dir():
        return _file_digest(path).hex()
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(b"\0")
        h.update(_file_digest(f))
    return h.hexdigest()


def size_of(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
