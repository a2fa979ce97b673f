"""Executed-instruction counts by class for one invoke of an artifact on an emulated ARM core.

The counting plugin (plugin/insn_classes.c) is compiled with the host's gcc into the edgec cache on first use,
keyed by a hash of its source, and loaded into qemu-aarch64 with -plugin. The guest brackets each invoke with
marker syscalls, so python start-up and npz I/O are not counted, and a first uncounted invoke leaves out the
runtime's one-time work (XNNPACK packs weights, ORT allocates on the first run). One guest thread, so counts do not depend on
the host's load or on thread scheduling: two runs of the same artifact on the same core give the same numbers.

Per op (.ort): ONNX Runtime's profiler reads the clock before and after every kernel, each read is a syscall
under QEMU 7.2 (no vDSO), and the plugin records the host clock and the running counts at each one. The
profiler's trace gives every op's start and duration; one time offset maps them onto the plugin's clock
readings, and an op's counts are the difference between the readings at its end and its start (vector
classes exact; a few scalar instructions of the profiler's own bookkeeping fall inside and vary). LiteRT's
Python API has no op profiler, so .tflite artifacts get totals only.
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
from edgec.runtimes.emulator.setup import STALE_AFTER_S, emulator_root

PLUGIN_DIR = Path(__file__).parent / "plugin"
CLASSES = ("fmla", "fmul", "sdot_udot", "int_mac", "vector_other", "load", "store", "branch", "other")


# the plugin's clock and the guest's read of it a moment later agree this closely (µs; the trace has µs
# resolution, and a host under load can delay the guest's read by a scheduling slice)
MATCH_US = 200.0


@dataclass
class OpCounts:
    name: str  # the ONNX node name (as the .ort keeps it)
    op_type: str
    per_invoke: dict[str, int]  # class -> instructions of this op in the counted invoke

    @property
    def total(self) -> int:
        return sum(self.per_invoke.values())


@dataclass
class InstructionCounts:
    core: str
    invokes: int
    per_invoke: dict[str, int]  # class -> instructions per steady-state invoke (the invokes' mean, rounded)
    ops: list[OpCounts] | None = None  # per op, in execution order, of the last invoke (None: no op boundaries)
    # per simulated cache level (L1D, L2, LLC), per invoke: accesses, load_misses, store_misses, writebacks
    cache: list[dict[str, int]] | None = None
    # with blocks=True: every translated block that ran, hottest first (pipeline simulation, mca.py)
    blocks: list[Block] | None = None

    @property
    def total(self) -> int:
        return sum(self.per_invoke.values())


@dataclass
class Block:
    code: bytes  # the block's instructions as the guest has them (little-endian A64 words)
    execs: float  # executions per invoke
    per_class: dict[str, int]  # class -> instructions in one execution

    @property
    def instructions(self) -> int:
        return len(self.code) // 4


def read_blocks(text: str, invokes: int) -> list[Block]:
    """The plugin's blocks= file: one line per block, "EXECS VADDR N_class... HEXBYTES". QEMU may translate the
    same code more than once (and two addresses may hold the same code): merged by their bytes, hottest first
    (by executed instructions; ties by bytes, so the order is deterministic)."""
    merged: dict[bytes, Block] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) != 3 + len(CLASSES):
            continue
        code = bytes.fromhex(f[-1])
        if code in merged:
            merged[code].execs += int(f[0]) / invokes
        else:
            merged[code] = Block(code, int(f[0]) / invokes, dict(zip(CLASSES, map(int, f[2:2 + len(CLASSES)]))))
    return sorted(merged.values(), key=lambda b: (-b.execs * b.instructions, b.code))


def ops_from_marks(marks: list[list[int]], events: list[dict]) -> list[OpCounts] | None:
    """Per-op counts from the plugin's clock readings of one invoke ([clockid, host ns, count per class...]) and
    the profiler's op events of the same invoke ({name, op_type, ts, dur} in µs, ts from the profiler's own
    start). None when the readings cannot be matched to every op (then no per-op counts are claimed)."""
    if not events or not marks:
        return None
    t = [m[1] / 1000.0 for m in marks]

    def nearest(x: float) -> int:
        import bisect

        i = bisect.bisect_left(t, x)
        return min((j for j in (i - 1, i) if 0 <= j < len(t)), key=lambda j: abs(t[j] - x))

    first = events[0]
    for k in range(len(t)):  # the reading that is the first op's start fixes the offset
        offset = t[k] - first["ts"]
        pairs = []
        for ev in events:
            a, b = nearest(ev["ts"] + offset), nearest(ev["ts"] + ev["dur"] + offset)
            if (b <= a or abs(t[a] - ev["ts"] - offset) > MATCH_US
                    or abs(t[b] - ev["ts"] - ev["dur"] - offset) > MATCH_US):
                break
            pairs.append((a, b))
        else:
            return [OpCounts(ev["name"], ev["op_type"],
                             {c: marks[b][2 + i] - marks[a][2 + i] for i, c in enumerate(CLASSES)})
                    for ev, (a, b) in zip(events, pairs)]
    return None


def profile_events(trace: list[dict]) -> list[dict]:
    """ONNX Runtime's per-op events of the last run in a profiler trace (Chrome trace JSON), in time order."""
    runs = [e for e in trace if e.get("name") == "model_run"]
    if not runs:
        return []
    last = max(runs, key=lambda e: e["ts"])
    ops = [e for e in trace if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
           and last["ts"] <= e["ts"] <= last["ts"] + last["dur"]]
    return [{"name": e["name"].removesuffix("_kernel_time"), "op_type": (e.get("args") or {}).get("op_name", "?"),
             "ts": float(e["ts"]), "dur": float(e["dur"])} for e in sorted(ops, key=lambda e: e["ts"])]


def plugin_path() -> Path:
    """The compiled plugin in the cache, built first if missing (needs gcc)."""
    src = [PLUGIN_DIR / "insn_classes.c", PLUGIN_DIR / "qemu_plugin_api.h"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in src)).hexdigest()[:16]
    root = emulator_root()
    so = root / "plugin" / f"insn_classes-{digest}.so"
    if so.exists():
        _touch(so)
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
        _remove_old_plugins(so)
    return so


def _touch(so: Path) -> None:
    try:
        so.touch()  # marks it used (mtime), so _remove_old_plugins keeps it
    except OSError:
        pass


def _remove_old_plugins(current: Path) -> None:
    """Builds of other plugin sources (another edgec version) that no edgec used for a day: a running QEMU keeps
    its mapping of a deleted file, and an edgec of that version would rebuild it."""
    import time

    for old in current.parent.glob("insn_classes-*.so"):
        if old != current and time.time() - old.stat().st_mtime > STALE_AFTER_S:
            old.unlink(missing_ok=True)


def count_instructions(fmt: str, path: Path | str, core: str, feeds: list[dict],
                       per_op: bool = False, caches: list[tuple[int, int]] | None = None,
                       blocks: bool = False) -> InstructionCounts:
    """Run `feeds` through the artifact on `core` with the counting plugin; counts per invoke. per_op (.ort):
    also per op, from ONNX Runtime's profiler (its bookkeeping, a few thousand instructions per op, is then
    part of the counted invoke). caches: [(bytes, ways)] of L1D, L2, LLC: the plugin also simulates them on
    every load and store of the invokes (the warm-up one fills them) and counts the misses per level. blocks:
    also every executed translated block's bytes and executions (InstructionCounts.blocks)."""
    from edgec.runtimes.emulator.runner import emulated_runner

    so = plugin_path()
    with tempfile.TemporaryDirectory(prefix="edgec-counts-") as d:
        out = Path(d) / "counts.json"
        trace = Path(d) / "ort-profile.json" if per_op and fmt == "ort" else None
        args = [str(so), f"out={out}"]
        if caches:
            args.append("cache=" + "+".join(f"{size}:{ways}" for size, ways in caches))
        block_file = Path(d) / "blocks.txt"
        if blocks:
            args.append(f"blocks={block_file}")
        runner = emulated_runner(fmt, path, core, plugin=args, profile=trace)
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
        ops = None
        if trace is not None and trace.exists():
            ops = ops_from_marks(data.get("marks", []), profile_events(json.loads(trace.read_text())))
        n = int(data["regions"])
        if n != len(feeds):
            raise DeviceError(f"{Path(path).name}: the plugin counted {n} invoke(s) for {len(feeds)} run(s).")
        hot = read_blocks(block_file.read_text(), n) if blocks and block_file.exists() else None
    cache = [{k: round(v / n) for k, v in level.items()} for level in data.get("cache", [])] or None
    return InstructionCounts(core, n, {k: round(v / n) for k, v in data["counts"].items()}, ops, cache, hot)
