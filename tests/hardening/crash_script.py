"""The edgec CLI with one target's step crashing natively (test helper, run as a script):

    EDGEC_TEST_CRASH=validate:SIGABRT python tests/hardening/crash_script.py build MODEL ...

The patch is made at import time, outside the __main__ guard, so a spawned worker process (which re-imports this
file as its main module) crashes the same way: a real abort/segfault of a process, as a native runtime would.
"""

from __future__ import annotations

import os
import signal
import sys

# from the environment: a spawned worker gets the parent's (rewritten) sys.argv, but the same environment
STEP, _, SIGNAL = os.environ["EDGEC_TEST_CRASH"].partition(":")
SIG = getattr(signal, SIGNAL)


def _crash(*args, **kwargs):
    os.kill(os.getpid(), SIG)  # SIGABRT / SIGSEGV with the default action: the process dies here


if STEP == "validate":
    from edgec.validate.runners.host_litert import LiteRTRunner

    LiteRTRunner.run = _crash
else:
    from edgec.lower.tflite.backend import TFLiteBackend

    TFLiteBackend.lower = _crash

if __name__ == "__main__":
    from edgec.cli import app

    sys.argv = ["edgec", *sys.argv[1:]]
    app()
