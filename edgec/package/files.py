"""Atomic file placement: everything is written in a staging folder inside the output folder, then renamed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edgec.errors import OutputError


def ensure_out_dir(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"Cannot create the output folder {out_dir}: {e.strerror}. Pick a writable --out folder.") from None
    if not os.access(out_dir, os.W_OK):
        raise OutputError(f"The output folder {out_dir} is not writable. Pick a writable --out folder.")
    return out_dir


def staging_dir(out_dir: Path) -> Path:
    """A private folder on the same file system as the output, so the final rename is atomic."""
    try:
        return Path(tempfile.mkdtemp(prefix=".edgec-staging-", dir=out_dir))
    except OSError as e:
        raise OutputError(f"Cannot write in the output folder {out_dir}: {e.strerror}.") from None


def place(src: Path, dest: Path) -> Path:
    """Rename a staged file or folder over its final path; the old artifact stays until the new one is complete."""
    try:
        if src.is_dir():
            old = None
            if dest.exists():
                old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
                os.replace(dest, old)
            os.replace(src, dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(src, dest)
    except OSError as e:
        raise OutputError(f"Cannot move the artifact into place at {dest}: {e.strerror}.") from None
    return dest


def write_text_atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"Cannot write {path}: {e.strerror}.") from None
    return path
