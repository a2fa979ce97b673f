"""A fork server for the fuzz harness: imports edgec and its runtimes once, then forks one child per case.

Each child is still a separate process running `python -m edgec.cli ARGS` (runpy, as `-m` does) with the case's
own environment, working folder, stdin from /dev/null, stdout and stderr to the case's files, its own exit code
(a signal is -N, as subprocess reports it) and a timeout that kills its whole process group. What a case no
longer pays is the ~2 s of CPU importing onnx, onnxruntime, coremltools, onnxsim and LiteRT. The server only
imports (no ONNX Runtime session, no thread pool runs here), so forking it is safe.

Protocol: one JSON object per line on stdin {"args", "env", "cwd", "stdout", "stderr", "timeout"}; one JSON line
back {"returncode" (null on timeout), "seconds", "cpu", "orphans"}.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

PRELOAD = ("numpy", "onnx", "onnxruntime", "onnxsim", "coremltools", "ai_edge_litert.interpreter", "edgec.cli",
           "edgec.api", "edgec.lower.coreml.backend", "edgec.lower.coreml.ops", "edgec.lower.tflite.backend",
           "edgec.lower.ort.backend", "edgec.validate", "edgec.runtimes.mil_interp", "edgec.package.manifest")


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # a module that is not there is imported (and fails) in the case, as without the server
            pass


def _child(req: dict) -> None:
    """In the forked child: become `python -m edgec.cli ARGS` and never return."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own group: the timeout kills its worker processes too
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(req["env"])
        import tempfile

        tempfile.tempdir = None  # re-read TMPDIR from the case's environment
        os.chdir(req["cwd"])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.argv = ["edgec", *req["args"]]
        import runpy

        try:
            runpy.run_module("edgec.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
        except BaseException:  # what the interpreter does with an uncaught exception
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        # what the interpreter does at exit (coremltools removes its temporary .mlpackage copies in an atexit
        # hook): non-daemon threads joined, atexit handlers run
        try:
            import atexit
            import threading

            threading._shutdown()
            atexit._run_exitfuncs()
        except BaseException:  # noqa: BLE001 - as at a real exit, a failing hook does not change the code
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream: nothing more to write
                pass
        os._exit(code)


def _wait(pid: int, timeout: float) -> tuple[int | None, float]:
    """(returncode or None on timeout, CPU seconds of the child and the children it waited for)."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid:
            if fd is not None:
                os.close(fd)
            return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime
        left = deadline - time.monotonic()
        if left <= 0:
            with _suppress():
                os.killpg(pid, signal.SIGKILL)
            _, _, usage = os.wait4(pid, 0)
            if fd is not None:
                os.close(fd)
            return None, usage.ru_utime + usage.ru_stime
        if fd is not None:
            select.select([fd], [], [], min(left, 1.0))
        else:
            time.sleep(0.02)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], (ProcessLookupError, PermissionError))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _subreaper() -> None:
    """Orphans of a case (a worker its build left running) are re-parented here, so they can be seen and reaped."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(pgid: int) -> None:
    while True:
        try:
            wpid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if not wpid:
            return


def serve() -> None:
    _subreaper()
    _preload()
    proto_in, proto_out = sys.stdin, sys.stdout
    proto_out.write(json.dumps({"ready": True}) + "\n")
    proto_out.flush()
    for line in proto_in:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _child(req)
        with _suppress():
            os.setpgid(pid, pid)  # also here: no race with a timeout that kills the group
        rc, cpu = _wait(pid, req["timeout"])
        seconds = time.perf_counter() - t0
        # a process the build left behind (e.g. a worker) would keep a real caller waiting on its pipes
        orphans = False
        until = time.monotonic() + 10
        while (_reap(pid), _group_alive(pid))[1] and time.monotonic() < until:
            time.sleep(0.05)
        if _group_alive(pid):
            orphans = True
            with _suppress():
                os.killpg(pid, signal.SIGKILL)
            time.sleep(0.1)
            _reap(pid)
        proto_out.write(json.dumps({"returncode": rc, "seconds": seconds, "cpu": cpu, "orphans": orphans}) + "\n")
        proto_out.flush()


if __name__ == "__main__":
    serve()
