"""Native libraries' output on file descriptors 1 and 2, which Python logging cannot reach.

LiteRT's C++ core prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every interpreter it makes
(drop_native_lines drops exactly that and passes every other line on); onnxsim prints "WARNING: failed to run ..."
while it folds constants (capture_native_output keeps those lines for the build report instead of the terminal).
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


@contextmanager
def capture_native_output() -> Iterator[list[str]]:
    """Collect what native code (and Python) writes to fds 1 and 2 meanwhile; the list is filled on exit."""
    lines: list[str] = []
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError):  # no real fds (embedded interpreters, some test runners): nothing to capture
        yield lines
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 1)
        os.dup2(captured.fileno(), 2)
        try:
            yield lines
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            for fd, old in zip((1, 2), saved):
                os.dup2(old, fd)
                os.close(old)
            captured.seek(0)
            lines.extend(line for line in captured.read().decode(errors="replace").splitlines() if line.strip())
