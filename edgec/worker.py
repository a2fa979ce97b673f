"""One target's lowering and validation in a worker process, so a native crash is that target's failure.

ONNX Runtime, LiteRT and coremltools run native code on untrusted models; a segfault or abort there would kill
the whole `--target all` build (no manifest, no other target). A multi-target build starts one spawned worker
(its imports overlap the parent's model loading and preparation) and hands it the targets one at a time; a
worker that dies becomes that target's InternalError, naming the signal and the stage, and a fresh worker takes
the next target. A library caller's process gets a spawned worker (it may already run ONNX Runtime thread pools,
which do not survive a fork, and pays ~2 s of CPU for the worker's imports); the CLI's process, which has only
imported modules when the build starts its worker, forks it (`start="fork"`: no imports paid twice).
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import traceback

from edgec.errors import EdgecError, InternalError


def _loop(conn, warm: tuple[str, ...], tmp: str, parent_end=None) -> None:
    """The worker: run (function, args) tasks until the parent closes the pipe. Stage names go back as they
    start, so a crash can say where it happened. `warm`: modules to import at once (the tasks' own), while the
    parent loads the model; this module itself knows nothing of them. `tmp`: this worker's own temporary folder,
    which the parent removes after it ends (coremltools leaves its temporary .mlpackage copies to an atexit hook
    that a forked or crashed process never runs). `parent_end` (fork only): the parent's end of the pipe,
    inherited and closed here so the parent's exit is this loop's end of file."""
    import importlib
    import os
    import tempfile

    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp

    if parent_end is not None:
        parent_end.close()
        # fresh stdio objects over the same file descriptors: another thread of the parent (the CLI's spinner)
        # may have held their buffer locks at the moment of the fork, and coremltools prints to them
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115 - lives as long as the worker
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    # Ctrl-C reaches the whole process group: the parent handles it (and kills a busy worker); the worker must
    # not print a KeyboardInterrupt traceback of its own. SIGTERM ends it plainly (a forked worker inherits the
    # CLI's handler that would unwind it like Ctrl-C).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    for module in warm:
        importlib.import_module(module)

    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        module, name, args = task
        fn = getattr(importlib.import_module(module), name)
        try:
            result = ("ok", fn(lambda stage: conn.send(("stage", stage)), *args))
        except EdgecError as e:
            # an InternalError wraps a bug (its __cause__): that traceback travels too, for --debug
            tb = "".join(traceback.format_exception(e.__cause__)) if e.__cause__ is not None else ""
            result = ("edgec-error", type(e).__module__, type(e).__qualname__, str(e), tb)
        except Exception as e:  # noqa: BLE001 - a bug travels back as text (the exception may not pickle)
            result = ("bug", type(e).__name__, str(e), traceback.format_exc())
        try:
            conn.send(result)
        except Exception as e:  # noqa: BLE001 - an unpicklable result is a bug, not a crash
            conn.send(("bug", type(e).__name__, f"the result could not be sent back: {e}", traceback.format_exc()))


def _error(module: str, qualname: str, message: str, cause_traceback: str = "") -> EdgecError:
    import importlib

    cls = getattr(importlib.import_module(module), qualname, EdgecError)
    err = cls.__new__(cls)  # skip __init__: its arguments (e.g. UnsupportedOp's problem list) are gone
    EdgecError.__init__(err, message)
    if cause_traceback:
        err.worker_traceback = cause_traceback
    return err


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


class WorkerUnavailable(Exception):
    """The worker process died before it took a task: the caller runs the targets in its own process."""


class Worker:
    """A lazily restarted spawned worker process. `run` returns the function's result or raises an
    EdgecError (the function's own, or InternalError when the process died)."""

    def __init__(self, warm: tuple[str, ...] = (), start: str = "spawn") -> None:
        self._proc = None
        self._conn = None
        self._warm = warm
        self._busy = False
        self._method = start
        self._tmp = None

    def start(self) -> None:
        if self._proc is not None:
            return
        import tempfile

        ctx = multiprocessing.get_context(self._method)
        parent, child = ctx.Pipe()
        self._tmp = tempfile.mkdtemp(prefix="edgec-worker-")
        args = (child, self._warm, self._tmp) + ((parent,) if self._method == "fork" else ())
        self._proc = ctx.Process(target=_loop, args=args, daemon=True, name="edgec-target")
        self._proc.start()
        child.close()
        self._conn = parent

    def run(self, target: str, module: str, name: str, *args, on_stage=None):
        """`on_stage(name)` hears each step as the worker starts it (the parent's progress lines)."""
        self.start()
        stage = "start"
        self._busy = True
        try:
            self._conn.send((module, name, args))
            while True:
                msg = self._conn.recv()
                if msg[0] == "stage":
                    stage = msg[1]
                    if on_stage is not None:
                        on_stage(stage)
                    continue
                break
            self._busy = False
        except (EOFError, ConnectionError, BrokenPipeError):
            self._proc.join(timeout=10)
            code = self._proc.exitcode
            self.close()
            if stage == "start":  # died before taking the task: it could not start (imports, an unguarded __main__)
                raise WorkerUnavailable(_signal_name(code)) from None
            raise InternalError(
                f"{target}: the worker process running its {stage} step died ({_signal_name(code)}): a native "
                f"runtime (ONNX Runtime, LiteRT or coremltools) crashed on this model. Only this target failed "
                f"(the build's other targets, if any, were built). Try building this target with --no-validate (the crash may be in the runtime that checks "
                f"the artifact), or another target; report it with the model if it persists."
            ) from None
        if msg[0] == "ok":
            return msg[1]
        if msg[0] == "edgec-error":
            raise _error(*msg[1:])
        _, kind, text, tb = msg
        err = InternalError(f"{target}: {stage} failed with {kind}: {text.strip().splitlines()[0] if text.strip() else ''}. "
                            f"This is a bug in edgec or one of its dependencies (the other targets were built); "
                            f"build this target alone with --debug for the traceback and report it.")
        err.worker_traceback = tb
        raise err

    def close(self) -> None:
        if self._proc is not None and self._busy:  # interrupted mid-task: its result is not wanted
            self._proc.kill()
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        if self._tmp is not None:
            import shutil

            shutil.rmtree(self._tmp, ignore_errors=True)
        self._proc = self._conn = self._tmp = None
        self._busy = False
