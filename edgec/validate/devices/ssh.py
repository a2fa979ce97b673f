"""Latency on a Linux board over ssh: copy the artifact, the inputs and bench_script.py, run the real runtime
there (onnxruntime for .ort/.onnx, ai-edge-litert for .tflite), read back per-run times as JSON.

Uses the system `ssh`/`scp` with BatchMode (keys or an agent, never a password prompt). Extra ssh options
(e.g. `-i KEY -o UserKnownHostsFile=...`) come from $EDGEC_SSH_OPTIONS; the remote interpreter from the URI's
`?python=` (default python3).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from edgec.errors import DeviceError, UsageError
from edgec.validate.devices.base import DeviceStats

SCRIPT = Path(__file__).with_name("bench_script.py")


class SshDevice:
    def __init__(self, host: str, user: str | None = None, port: int | None = None, python: str = "python3",
                 options: list[str] | None = None, timeout: float = 600.0):
        self.host, self.user, self.port, self.python = host, user, port, python
        self.options = list(options if options is not None else shlex.split(os.environ.get("EDGEC_SSH_OPTIONS", "")))
        self.timeout = timeout

    @classmethod
    def from_uri(cls, uri: str) -> "SshDevice":
        parts = urlsplit(uri)
        if parts.scheme != "ssh" or not parts.hostname:
            raise UsageError(f"Device '{uri}' is not ssh://[user@]host[:port].")
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"Device '{uri}': the port is not a number.") from None
        python = parse_qs(parts.query).get("python", ["python3"])[0]
        return cls(parts.hostname, parts.username, port, python)

    def describe(self) -> str:
        who = f"{self.user}@{self.host}" if self.user else self.host
        return f"ssh://{who}" + (f":{self.port}" if self.port else "")

    # ---------------------------------------------------------------- commands

    def _common(self, port_flag: str) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"] + self.options
        if self.port:
            opts += [port_flag, str(self.port)]
        return opts

    def _dest(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def ssh_command(self, remote: str) -> list[str]:
        return ["ssh", *self._common("-p"), self._dest(), remote]

    def scp_command(self, files: list[Path], remote_dir: str) -> list[str]:
        return ["scp", "-q", "-r", *self._common("-P"), *map(str, files), f"{self._dest()}:{remote_dir}/"]

    def _run(self, cmd: list[str], what: str) -> str:
        if shutil.which(cmd[0]) is None:
            raise DeviceError(f"`{cmd[0]}` is not installed on this machine; it is needed for {self.describe()}.")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.describe()}: {what} took longer than {self.timeout:g} s.") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise DeviceError(f"{self.describe()}: {what} failed (exit {proc.returncode}): " + " | ".join(tail))
        return proc.stdout

    # ---------------------------------------------------------------- benchmark

    def benchmark(self, artifact, profile, feeds: dict) -> DeviceStats:
        spec = profile.validate_.latency
        path = Path(artifact.path)
        if path.is_dir():
            raise UsageError(f"{path.name}: ssh boards run .ort/.onnx/.tflite files, not a package folder.")
        remote = self._run(self.ssh_command("mktemp -d /tmp/edgec-bench.XXXXXX"), "creating a work folder").strip()
        if not remote.startswith("/tmp/edgec-bench."):
            raise DeviceError(f"{self.describe()}: unexpected answer to mktemp: {remote!r}")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                inputs = Path(tmp) / "inputs.npz"
                buf = io.BytesIO()
                np.savez(buf, **{k: np.asarray(v) for k, v in feeds.items()})
                inputs.write_bytes(buf.getvalue())
                self._run(self.scp_command([path, inputs, SCRIPT], remote), "copying the artifact")
            threads = profile.runtime.threads
            args = [self.python, f"{remote}/{SCRIPT.name}", f"{remote}/{path.name}", f"{remote}/inputs.npz",
                    "--threads", str(threads), "--runs", str(spec.runs), "--warmup", str(spec.warmup)]
            if spec.time_budget_s:
                args += ["--max-seconds", str(spec.time_budget_s)]
            out = self._run(self.ssh_command(shlex.join(args)), "running the benchmark")
        finally:
            try:
                self._run(self.ssh_command(f"rm -rf {shlex.quote(remote)}"), "cleaning up")
            except DeviceError:
                pass  # the board is still usable; a leftover folder in /tmp is not worth failing the build
        data = parse_output(out, self.describe())
        return DeviceStats(runtime=f"{data['runtime']} on {self.describe()}", threads=int(data["threads"]),
                           method=f"{data['runtime']} on {self.describe()} via ssh, {len(data['times_ms'])} timed runs",
                           times_ms=[float(t) for t in data["times_ms"]], runs=len(data["times_ms"]),
                           remote=dict(data.get("remote") or {}))


def parse_output(out: str, where: str) -> dict:
    """The last line of the remote script's stdout is its JSON (anything before it is the runtime's chatter)."""
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    try:
        data = json.loads(lines[-1])
        if not data["times_ms"]:
            raise ValueError("no runs")
        return data
    except (IndexError, ValueError, KeyError, TypeError):
        raise DeviceError(f"{where}: the benchmark printed no timing JSON: {out.strip()[-300:]!r}") from None
