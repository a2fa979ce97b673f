"""Executed-instruction counts by class for one invoke of an artifact on an emulated ARM core.

The counting plugin (plugin/insn_classes.c) is compiled with the host's gcc into the edgec cache on first use,
keyed by a hash of its source, and loaded into qemu-aarch64 with -plugin. The guest brackets each invoke with
marker syscalls, so python start-up and npz I/O are not counted, and a first uncounted invoke leaves out the
runtime's one-time work (XNNPACK packs weights, ORT allocates on the first run). One guest thread, so counts do not depend on
the host's load or on thread scheduling: two runs of the same artifact on the same core give the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgec.errors import DeviceError
from edgec.paths import exclusive
from edgec.runtimes.emulator.setup import emulator_root

PLUGIN_DIR = Path(__file__).parent / "plugin"
CLASSES = ("fmla", "fmul", "sdot_udot", "int_mac", "vector_other", "load", "store", "branch", "other")


@dataclass
class InstructionCounts:
    core: str
    invokes: int
    per_invoke: dict[str, int]  # class -> instructions per steady-state invoke (the invokes' mean, rounded)

    @property
    def total(self) -> int:
        return sum(self.per_invoke.values())


def plugin_path() -> Path:
    """The compiled plugin in the cache, built first if missing (needs gcc)."""
    src = [PLUGIN_DIR / "insn_classes.c", PLUGIN_DIR / "qemu_plugin_api.h"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in src)).hexdigest()[:16]
    root = emulator_root()
    so = root / "plugin" / f"insn_classes-{digest}.so"
    if so.exists():
        return so
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise DeviceError("Counting emulated instructions needs a C compiler to build edgec's QEMU plugin once, "
                          "and neither gcc nor cc is on PATH. Install the Debian/Ubuntu package `gcc`.")
    so.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(root / "setup.lock"):
        if so.exists():
            return so
        tmp = so.with_name(f".tmp-{so.name}")
        r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o", str(tmp), str(src[0])],
                           capture_output=True, text=True, timeout=300, check=False)
        if r.returncode != 0:
            raise DeviceError(f"Building the QEMU instruction-count plugin failed: {r.stderr.strip()[-500:]}")
        tmp.rename(so)
    return so


def count_instructions(fmt: str, path: Path | str, core: str, feeds: list[dict]) -> InstructionCounts:
    """Run `feeds` through the artifact on `core` with the counting plugin; counts per invoke."""
    from edgec.runtimes.emulator.runner import emulated_runner

    so = plugin_path()
    with tempfile.TemporaryDirectory(prefix="edgec-counts-") as d:
        out = Path(d) / "counts.json"
        runner = emulated_runner(fmt, path, core, plugin=[str(so), f"out={out}"])
        try:
            runner.session.counted = False
            runner.run(feeds[0])
            runner.session.counted = True
            for f in feeds:
                runner.run(f)
        finally:
            code = runner.close()
        if code != 0 or not out.exists():
            raise DeviceError(f"{Path(path).name} under qemu-aarch64 -cpu {core}: the instruction-count plugin wrote "
                              f"no counts (guest exit code {code}).")
        data = json.loads(out.read_text())
    n = int(data["regions"])
    if n != len(feeds):
        raise DeviceError(f"{Path(path).name}: the plugin counted {n} invoke(s) for {len(feeds)} run(s).")
    return InstructionCounts(core, n, {k: round(v / n) for k, v in data["counts"].items()})
