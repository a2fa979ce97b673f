"""Cycles of the hot translated blocks from LLVM's pipeline simulator (llvm-mca), the rest at the throughput table.

The counting plugin reports every block the counted invokes executed (bytes and executions). A block ends at
its branch, so a hot kernel's inner loop body is one block: llvm-mca's steady-state cycles per iteration of it
(register dependencies through the instruction latencies, the ports' pressure, the core's dispatch width and
reorder buffer, from LLVM's scheduling model of the core) is what one execution costs. cycles = sum over the
hottest blocks (>= COVERAGE of the executed instructions) of executions x cycles per iteration, + the remaining
instructions at cpu_model's throughput table. Loads are L1 hits in llvm-mca; the caller adds the DRAM stalls.

Which scheduling model backs which -mcpu depends on the LLVM version (checked by the resource names llvm-mca
prints): LLVM 14 runs cortex-a76 and neoverse-n1 on its Cortex-A57 model (the A72's FP rates, half the A76's);
LLVM 19 has a Neoverse N1 model (AArch64SchedNeoverseN1.td), the A76's pipeline. So:
- cortex-a76, neoverse-n1: -mcpu=neoverse-n1 on an LLVM whose resources are N1Unit* (19: apt-get install llvm-19);
- cortex-a72: -mcpu=cortex-a72, LLVM's Cortex-A57 model (AArch64SchedA57.td), which LLVM uses for the A72;
- cortex-a53 (the little cores, costed as an A55 like cpu_model's table): -mcpu=cortex-a55, CortexA55Model.

One correction to what llvm-mca is given, for the cores' store pipelines: llvm-mca issues an instruction when all
its operands are ready, so a writeback store (str q0, [x0], #16) updates its base register only after its DATA
is computed, and a loop whose next load uses that base (an elementwise pass: load, add, max, store) becomes one
dependency chain through the load, the arithmetic and the store (10 cycles per 4 floats on the N1 model). The
cores split a store into address and data micro-ops and update the base with an integer micro-op (the SOGs'
store rows: an address pipe L01 plus a data pipe; writeback forms one more integer micro-op), so the base update
waits for the base alone. Writeback stores are therefore given to llvm-mca as the store plus a separate
add/sub of the base (split_writeback_stores), the same micro-ops without the false dependency.
Results are cached per block (bytes hash, mcpu, LLVM version): two runs give identical cycles.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgec.runtimes.emulator import cpu_model
from edgec.runtimes.emulator.counts import CLASSES, Block

COVERAGE = 0.95  # simulate the hottest blocks until they hold this share of the executed instructions
MAX_BLOCKS = 3000
ITERATIONS = 200  # llvm-mca iterations per block: the pipeline fill is < 0.1 cycle per iteration after these
SPLIT_VERSION = 1  # bump when split_writeback_stores changes (the per-block cache key)
MATTR = "+neon,+dotprod,+fullfp16"
INSTALL = "apt-get install llvm-19"

# core -> (llvm -mcpu, the resource-name prefix its own scheduling model prints, what that model is)
MODELS = {
    "cortex-a76": ("neoverse-n1", "N1Unit", "LLVM's Neoverse N1 model (the Cortex-A76 pipeline)"),
    "neoverse-n1": ("neoverse-n1", "N1Unit", "LLVM's Neoverse N1 model"),
    "cortex-a72": ("cortex-a72", "A57Unit", "LLVM's Cortex-A57 model (which LLVM uses for the Cortex-A72)"),
    "cortex-a53": ("cortex-a55", "CortexA55Unit", "LLVM's Cortex-A55 model (the A55 little cores, emulated as A53)"),
}


@dataclass(frozen=True)
class Llvm:
    mca: str
    mc: str
    version: str


def _candidates() -> list[Path]:
    """llvm-mca binaries, newest LLVM first: Debian's /usr/lib/llvm-N/bin, then PATH's."""
    found = sorted(Path("/usr/lib").glob("llvm-*/bin/llvm-mca"),
                   key=lambda p: int(re.sub(r"\D", "", p.parts[-3]) or 0), reverse=True)
    on_path = shutil.which("llvm-mca")
    return found + ([Path(on_path)] if on_path else [])


@functools.lru_cache(maxsize=None)
def find_llvm(core: str) -> Llvm | None:
    """The newest installed llvm-mca whose -mcpu for `core` runs that core's own scheduling model (None: none)."""
    if core not in MODELS:
        return None
    mcpu, prefix, _ = MODELS[core]
    for mca in _candidates():
        mc = mca.with_name("llvm-mc")
        if not mc.exists():
            continue
        try:
            r = subprocess.run([str(mca), "-mtriple=aarch64", f"-mcpu={mcpu}", "-iterations=1"],
                               input="add x0, x0, x1\n", capture_output=True, text=True, timeout=60, check=False)
            v = subprocess.run([str(mca), "--version"], capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0 and re.search(rf"- {prefix}", r.stdout):
            m = re.search(r"LLVM version (\S+)", v.stdout)
            return Llvm(str(mca), str(mc), m.group(1) if m else "?")
    return None


def missing_note(core: str) -> str:
    mcpu, prefix, model = MODELS.get(core, ("?", "?", "?"))
    return (f"no installed llvm-mca has {model} for -mcpu={mcpu} (LLVM 14 runs cortex-a76/neoverse-n1 on its A57 "
            f"model); install it with `{INSTALL}`")


def status_line() -> str:
    """For `edgec doctor`: which LLVM simulates each core's pipeline."""
    parts = []
    for core in ("cortex-a76", "cortex-a72", "cortex-a53"):
        t = find_llvm(core)
        parts.append(f"{core}: LLVM {t.version} -mcpu={MODELS[core][0]}" if t else f"{core}: none")
    need = "" if all(find_llvm(c) for c in MODELS) else f" ({INSTALL} for the missing ones)"
    return "; ".join(parts) + need


def disassemble(code: bytes, llvm: Llvm) -> list[str] | None:
    """The block's instructions as assembly text; None when llvm-mc rejects one of them."""
    text = " ".join(f"0x{b:02x}" for b in code)
    try:
        r = subprocess.run([llvm.mc, "--disassemble", "-triple=aarch64", f"-mattr={MATTR}"], input=text,
                           capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0 or "invalid" in r.stderr:
        return None
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip() and not ln.strip().startswith(".")]
    return lines if len(lines) == len(code) // 4 else None


_POST = re.compile(r"^(st\w+)\s+(.*), \[(x\d+|sp)\], (#-?\d+|x\d+)$")
_PRE = re.compile(r"^(st\w+)\s+(.*), \[(x\d+|sp), #(-?\d+)\]!$")


def _base_update(base: str, by: str) -> str:
    if by.startswith("#-"):
        return f"sub {base}, {base}, #{by[2:]}"
    return f"add {base}, {base}, {by}"


def split_writeback_stores(lines: list[str]) -> list[str]:
    """Post- and pre-indexed stores as the store plus an add/sub of the base (see the module docstring)."""
    out = []
    for ln in lines:
        text = " ".join(ln.split())
        if m := _POST.match(text):
            out += [f"{m[1]} {m[2]}, [{m[3]}]", _base_update(m[3], m[4])]
        elif m := _PRE.match(text):
            out += [_base_update(m[3], f"#{m[4]}"), f"{m[1]} {m[2]}, [{m[3]}]"]
        else:
            out.append(ln)
    return out


def _mca(regions: list[list[str]], core: str, llvm: Llvm) -> list[float] | None:
    """Cycles per iteration of each region (one llvm-mca run); None when llvm-mca fails on any of them."""
    src = "".join(f"# LLVM-MCA-BEGIN b{i}\n" + "\n".join(split_writeback_stores(r)) + f"\n# LLVM-MCA-END b{i}\n" for i, r in enumerate(regions))
    try:
        r = subprocess.run([llvm.mca, "-mtriple=aarch64", f"-mcpu={MODELS[core][0]}", f"-mattr={MATTR}",
                            f"-iterations={ITERATIONS}"], input=src, capture_output=True, text=True, timeout=600,
                           check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    totals = [int(x) for x in re.findall(r"^Total Cycles:\s+(\d+)", r.stdout, re.M)]
    return [t / ITERATIONS for t in totals] if len(totals) == len(regions) else None


def block_cycles(codes: list[bytes], core: str, llvm: Llvm, cache: Path | None = None) -> list[float | None]:
    """llvm-mca's cycles per iteration of each block (None: not simulable), cached per block in `cache`."""
    key = f"llvm{llvm.version}-{MODELS[core][0]}-i{ITERATIONS}-split{SPLIT_VERSION}"
    store: dict[str, float | None] = {}
    path = cache / f"{key}.json" if cache else None
    if path and path.exists():
        store = json.loads(path.read_text())
    ids = [hashlib.sha256(c).hexdigest()[:32] for c in codes]
    todo = [(i, c) for i, (h, c) in enumerate(zip(ids, codes)) if h not in store]
    asm = {i: disassemble(c, llvm) for i, c in todo}
    ok = [i for i, _ in todo if asm[i] is not None]
    for i, _ in todo:
        store[ids[i]] = None
    got = _mca([asm[i] for i in ok], core, llvm) if ok else []
    if got is None:  # one block llvm-mca cannot schedule: the rest one by one
        got = [(_mca([asm[i]], core, llvm) or [None])[0] for i in ok]
    for i, cyc in zip(ok, got):
        store[ids[i]] = cyc
    if path and todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # builds running at once each write whole files
        tmp.write_text(json.dumps(store, sort_keys=True))
        tmp.replace(path)
    return [store[h] for h in ids]


@dataclass
class PipelineCycles:
    cycles: float  # per invoke, one core
    simulated_cycles: float  # of those, the llvm-mca blocks'
    rest_cycles: float  # the instructions outside them, at the throughput table
    coverage: float  # share of the executed instructions llvm-mca simulated
    blocks: int
    model: str  # "LLVM 19.1.7 neoverse-n1 (...)"
    # the hottest simulated blocks: share of the instructions, instructions, cycles per execution, FMLA+SDOT in it
    hottest: list[dict] | None = None


def pipeline_cycles(blocks: list[Block], per_invoke: dict[str, int], core: str, llvm: Llvm,
                    cache: Path | None = None) -> PipelineCycles:
    total = sum(per_invoke.values()) or 1
    hot, covered = [], 0.0
    for b in blocks:  # hottest first
        if covered >= COVERAGE * total or len(hot) >= MAX_BLOCKS:
            break
        hot.append(b)
        covered += b.execs * b.instructions
    cyc = block_cycles([b.code for b in hot], core, llvm, cache)
    rest = dict(per_invoke)
    simulated, done = 0.0, 0.0
    for b, c in zip(hot, cyc):
        if c is None:
            continue
        simulated += b.execs * c
        done += b.execs * b.instructions
        for k in CLASSES:
            rest[k] = rest.get(k, 0) - b.execs * b.per_class.get(k, 0)
    rest = {k: max(v, 0.0) for k, v in rest.items()}
    rest_cycles = cpu_model.cycles(rest, core)[0] if sum(rest.values()) else 0.0
    top = [{"share": round(b.execs * b.instructions / total, 4), "instructions": b.instructions, "cycles": c,
            "macs": b.per_class["fmla"] + b.per_class["sdot_udot"]} for b, c in zip(hot[:5], cyc[:5])]
    return PipelineCycles(simulated + rest_cycles, simulated, rest_cycles, done / total, sum(c is not None for c in cyc),
                          f"LLVM {llvm.version} -mcpu={MODELS[core][0]}, {MODELS[core][2]}", top)
