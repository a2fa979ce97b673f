"""Runs a .tflite or .ort under qemu-aarch64 -cpu CORE with the real aarch64 LiteRT / ONNX Runtime.

One guest process per artifact, started once (python and the runtime take seconds to start under emulation) and
fed one request per run through npz files in a private temp folder. A crash (e.g. SIGILL: a kernel the core
lacks), a runtime error or a timeout is a DeviceError naming the core and the artifact.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

import numpy as np

from edgec.errors import DeviceError
from edgec.runtimes.emulator import guest
from edgec.runtimes.emulator.setup import Emulator, ensure

START_TIMEOUT_S = 600.0  # the guest's python + runtime import, on a loaded 2-core machine
RUN_TIMEOUT_S = 600.0  # one invoke: fp32 runs ~400x slower than native


class GuestSession:
    """A guest process serving runs of one model. `plugin`: QEMU -plugin arguments (instruction counting)."""

    def __init__(self, emu: Emulator, kind: str, model: Path | str, threads: int = 1,
                 plugin: list[str] | None = None, start_timeout_s: float = START_TIMEOUT_S,
                 run_timeout_s: float = RUN_TIMEOUT_S, profile: Path | str | None = None):
        self.emu, self.kind, self.model = emu, kind, Path(model)
        self.run_timeout_s = run_timeout_s
        self.tmp = Path(tempfile.mkdtemp(prefix="edgec-qemu-"))
        # the script and model are read through the -L prefix, which only redirects paths the rootfs has;
        # a private copy under /tmp can never be shadowed by a rootfs file
        script = self.tmp / "guest.py"
        shutil.copyfile(guest.__file__, script)
        self._stderr = open(self.tmp / "stderr.txt", "wb")  # noqa: SIM115 - lives as long as the guest
        self.proc = subprocess.Popen(
            emu.command(str(script), kind, str(self.model.resolve()), str(threads),
                        *([str(profile)] if profile else []), plugin=plugin),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=emu.env(self.tmp),
            cwd=self.tmp, start_new_session=True, preexec_fn=_no_core_dumps)  # noqa: PLW1509 - only setrlimit
        self._finalizer = weakref.finalize(self, _cleanup, self.proc, self.tmp, self._stderr)
        self._buf = b""
        self._n = 0
        self.counted = True  # False: runs are left out of the instruction counts (warm-up)
        self._expect("ready", start_timeout_s, "starting the runtime")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._n += 1
        src, dst = self.tmp / f"in{self._n}.npz", self.tmp / f"out{self._n}.npz"
        guest.write_npz(src, feeds)
        try:
            self.proc.stdin.write(f"{'run' if self.counted else 'warm'} {src} {dst}\n".encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the guest died; _expect reports how
        self._expect("ok", self.run_timeout_s, "running the model")
        out = guest.read_npz(dst)
        src.unlink()
        dst.unlink()
        return out

    def close(self) -> int | None:
        """Ends the guest (EOF on stdin) and returns its exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=120)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                pass
        code = self.proc.poll()
        self._finalizer()
        return code

    def _expect(self, word: str, timeout_s: float, doing: str) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._readline(deadline)
            if line is None:  # timeout, or the guest closed its stdout (exited)
                self._fail(doing, timeout_s)
            if line.startswith(guest.TAG + " "):
                reply = line[len(guest.TAG) + 1:]
                if reply == word:
                    return
                self._fail(doing, timeout_s, reply.removeprefix("error "))

    def _readline(self, deadline: float) -> str | None:
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:  # EOF: the guest is exiting; give it a moment so _fail sees its exit code
                    try:
                        self.proc.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        pass
                    return None
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def _fail(self, doing: str, timeout_s: float, error: str | None = None):
        where = f"{self.model.name} under qemu-aarch64 -cpu {self.emu.core}"
        if error is None and self.proc.poll() is None:
            self._finalizer()
            raise DeviceError(f"{where}: {doing} took longer than {timeout_s:.0f} s and was stopped. Emulation runs "
                              f"fp32 models ~400x slower than the device: validate a smaller input or fewer samples.")
        code = self.proc.wait() if error is None else None
        self._stderr.flush()
        tail = " ".join((self.tmp / "stderr.txt").read_text(errors="replace").strip().splitlines()[-3:])
        self._finalizer()
        if error is not None:
            raise DeviceError(f"{where}: the runtime failed {doing}: {error}")
        sig = f" (killed by {signal.Signals(-code).name})" if code is not None and code < 0 else ""
        hint = (" SIGILL means the runtime chose an instruction this core lacks: check the core's /proc/cpuinfo "
                "in the emulator prefix (`edgec emulator setup` rewrites it)." if code == -signal.SIGILL else "")
        raise DeviceError(f"{where}: the guest process died {doing}, exit code {code}{sig}.{hint} {tail}".strip())


def _no_core_dumps() -> None:
    # a guest that dies of SIGILL/SIGSEGV makes QEMU write a core file the size of the guest's memory
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _no_aslr()


ADDR_NO_RANDOMIZE = 0x0040000  # linux/personality.h


def _no_aslr() -> None:
    """QEMU user mode places the guest's mmaps where the host's mmap puts them, so with the host's address-space
    randomization every run sees other addresses: other cache sets, other simulated misses. Off for the guest
    (as `setarch -R` does), the buffers land at the same addresses every run. Where the kernel refuses, runs
    still work, only the cache counts may vary by a few lines."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        current = libc.personality(0xFFFFFFFF)
        if current != -1:
            libc.personality(current | ADDR_NO_RANDOMIZE)
    except (OSError, AttributeError):
        pass


def _cleanup(proc: subprocess.Popen, tmp: Path, stderr) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: qemu and nothing else
        except ProcessLookupError:
            pass
        proc.wait()
    for f in (proc.stdin, proc.stdout):
        try:
            f.close()
        except (OSError, ValueError):
            pass
    stderr.close()
    shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- the runners validation uses

THREADS = 1  # one emulated thread: deterministic instruction counts, and no spinning thread pool on the host


class EmulatedOrtRunner:
    """An .ort file on the ARM core: same interface as the host's OrtRunner (feeds and outputs by ONNX name)."""

    def __init__(self, path: Path | str, core: str, emu: Emulator | None = None, plugin: list[str] | None = None,
                 profile: Path | str | None = None):
        self.emu = emu or ensure(core)
        self.name = f"onnxruntime (ORT format) on qemu {core}"
        self.session = GuestSession(self.emu, "ort", path, THREADS, plugin=plugin, profile=profile)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.session.run(feeds)

    def close(self):
        return self.session.close()


class EmulatedLiteRTRunner:
    """A .tflite on the ARM core. The host's LiteRTRunner still does the boundary work (channels-last I/O,
    int8 model I/O), with its signature call sent to the guest, so both runs see byte-identical tensors."""

    def __init__(self, path: Path | str, core: str, emu: Emulator | None = None, plugin: list[str] | None = None):
        from edgec.runtimes.host_litert import LiteRTRunner

        self.emu = emu or ensure(core)
        self.name = f"litert on qemu {core}"
        self.host = LiteRTRunner(path, threads=1)
        self.session = GuestSession(self.emu, "tflite", path, THREADS, plugin=plugin)
        self.host.signature = lambda **args: self.session.run(args)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.host.run(feeds)

    def close(self):
        return self.session.close()


def emulated_runner(fmt: str, path: Path | str, core: str, plugin: list[str] | None = None,
                    profile: Path | str | None = None):
    """profile: ORT's per-op trace is written there when the guest exits (.ort only; LiteRT's Python API has
    no op profiler)."""
    if fmt == "tflite":
        return EmulatedLiteRTRunner(path, core, plugin=plugin)
    if fmt == "ort":
        return EmulatedOrtRunner(path, core, plugin=plugin, profile=profile)
    from edgec.errors import UsageError

    raise UsageError(f"--emulator runs .tflite and .ort artifacts (android, ort-mobile), not '{fmt}'.")
