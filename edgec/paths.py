"""Where edgec keeps what it builds once per machine (samples, host calibration, the emulator, the build cache)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("EDGEC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgec"
    )
    return Path(root)
