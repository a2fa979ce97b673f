"""Run the edgec CLI with a signal or a delay injected at one stage of a build (test helper, run as a script):

    python -m tests.hardening.inject STAGE SIGNAL|sleep:SECONDS [nth] -- build MODEL ...

The signal is sent to this process (the CLI's, as a Ctrl-C or a kill would be) when the stage's function is
entered for the nth time, so the interrupt lands exactly there: no timing guesses. A stage that runs in the
build's forked worker process (lower, validate) calls the hook there: the signal still goes to the CLI process.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> None:
    stage, action, nth = sys.argv[1], sys.argv[2], int(sys.argv[3]) if sys.argv[3] != "--" else 1
    args = sys.argv[sys.argv.index("--") + 1:]
    import edgec.api as api
    import edgec.package.publish as publish

    targets = {
        "load": (api, "load_model_renamed"), "prepare": (api, "prepare"), "lower": (api, "_lower_guarded"), "validate": (api, "_validate"),
        "report": (api, "write_report"), "manifest": (api, "write_manifest"),
        "before-commit": (publish.OutputFolder, "commit"), "mid-commit": (publish.os, "replace"),
    }
    if stage == "exit":  # after the command finished and printed its outcome, while the interpreter exits
        import atexit

        atexit.register(lambda: (os.kill(os.getpid(), getattr(signal, action)), time.sleep(0.05)))
        return _cli(args)
    owner, name = targets[stage]
    original = getattr(owner, name)
    calls = [0]
    cli_pid = os.getpid()

    def hooked(*a, **k):
        calls[0] += 1
        if calls[0] == nth:
            if action.startswith("sleep:"):
                time.sleep(float(action[6:]))
            else:
                os.kill(cli_pid, getattr(signal, action))
                time.sleep(0.05)  # let the handler run here (a masked signal stays pending)
        return original(*a, **k)

    if stage == "mid-commit":  # only the commit's renames, not every os.replace in the build
        swap = publish.OutputFolder._swap

        def swap_hooked(self, names):
            publish.os.replace = hooked
            try:
                return swap(self, names)
            finally:
                publish.os.replace = original
        publish.OutputFolder._swap = swap_hooked
    else:
        setattr(owner, name, hooked)
    _cli(args)


def _cli(args: list[str]) -> None:
    from edgec.cli import main  # the console script's entry, as a user runs it

    sys.argv = ["edgec", *args]
    main()


if __name__ == "__main__":
    main()
