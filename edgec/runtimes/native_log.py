"""Drop known start-up chatter that native runtimes print straight to file descriptor 2.

LiteRT's C++ core prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every interpreter it makes;
Python logging cannot reach it, so the fd is redirected for the duration and every other line is passed on.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def drop_native_lines(prefixes: tuple[str, ...]) -> Iterator[None]:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 (embedded interpreters): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not line.startswith(prefixes))
            if kept:  # errors and warnings still reach the user
                sys.stderr.write(kept)
                sys.stderr.flush()
