"""llvm-mca's pipeline simulation of the hot translated blocks (edgec/runtimes/emulator/mca.py)."""

from __future__ import annotations

import struct

import pytest

from edgec.runtimes.emulator import mca
from edgec.runtimes.emulator.counts import CLASSES, Block, read_blocks


def _llvm(core: str) -> mca.Llvm:
    llvm = mca.find_llvm(core)
    if llvm is None:
        pytest.skip(f"{mca.missing_note(core)} (.ci/run installs llvm-19 with apt-get; skips only where it cannot)")
    return llvm


def _fmla(d: int, n: int, m: int) -> int:
    """FMLA Vd.4S, Vn.4S, Vm.4S (A64 'Advanced SIMD three same', Q=1, sz=0)."""
    return 0x4E20CC00 | (m << 16) | (n << 5) | d


def _code(words: list[int]) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


DEPENDENT = _code([_fmla(0, 1, 2)] * 8)  # one accumulator: each FMLA waits for the previous one
INDEPENDENT = _code([_fmla(d, 20, 21) for d in range(16)])  # 16 accumulators, > latency x pipes


@pytest.mark.parametrize("core, latency, per_cycle", [("cortex-a76", 4, 2), ("cortex-a72", 4, 1)])
def test_fmla_chain_costs_its_latency_independent_fmlas_the_throughput(core, latency, per_cycle, tmp_path):
    llvm = _llvm(core)
    dep, ind = mca.block_cycles([DEPENDENT, INDEPENDENT], core, llvm, tmp_path)
    # Neoverse N1 SOG / Cortex-A72 SOG: FMLA (Q-form) latency 4 with the accumulator forwarded; N1 two V pipes,
    # A72 one Q-form FMLA per cycle. Pipeline fill over 200 iterations: < 0.2 cycle per iteration.
    assert dep == pytest.approx(8 * latency, abs=0.2)
    assert ind == pytest.approx(16 / per_cycle, abs=0.2)
    # cached per block: the second run reads the same numbers from the file, without llvm-mca
    assert len(list(tmp_path.glob("*.json"))) == 1
    assert mca.block_cycles([INDEPENDENT, DEPENDENT], core, mca.Llvm("/nonexistent", "/nonexistent", llvm.version),
                            tmp_path) == [ind, dep]


def test_a76_runs_on_the_neoverse_n1_model_not_the_a57_one():
    llvm = _llvm("cortex-a76")
    assert mca.MODELS["cortex-a76"][0] == "neoverse-n1" and int(llvm.version.split(".")[0]) >= 17
    assert "neoverse-n1" in mca.status_line()


def test_undecodable_block_is_left_to_the_throughput_table(tmp_path):
    llvm = _llvm("cortex-a76")
    assert mca.block_cycles([_code([0xFFFFFFFF])], "cortex-a76", llvm, tmp_path) == [None]  # unallocated encoding
    hot = Block(INDEPENDENT, 1000.0, {**dict.fromkeys(CLASSES, 0), "fmla": 16})
    bad = Block(_code([0xFFFFFFFF] * 4), 10.0, {**dict.fromkeys(CLASSES, 0), "other": 4})
    per_invoke = {**dict.fromkeys(CLASSES, 0), "fmla": 16000, "other": 40 + 600}
    p = mca.pipeline_cycles([hot, bad], per_invoke, "cortex-a76", llvm, tmp_path)
    assert p.blocks == 1 and p.simulated_cycles == pytest.approx(1000 * 8, abs=200)
    # the rest: 640 scalar instructions at the A76 table's 3 per cycle (issue 4 per cycle is not the bound)
    assert p.rest_cycles == pytest.approx(640 / 3) and p.cycles == p.simulated_cycles + p.rest_cycles
    assert p.coverage == pytest.approx(16000 / 16640)


def test_plugin_block_file_merges_retranslations_hottest_first():
    counts = " ".join(["0"] * len(CLASSES))
    text = (f"10 4000 {counts} {INDEPENDENT.hex()}\n"
            f"6 8000 {counts} {INDEPENDENT.hex()}\n"  # the same code translated twice
            f"100 9000 {counts} {DEPENDENT.hex()}\n")
    blocks = read_blocks(text, invokes=2)
    assert [b.code for b in blocks] == [DEPENDENT, INDEPENDENT]
    assert [b.execs for b in blocks] == [50.0, 8.0]


def test_tiny_model_blocks_add_up_and_cycles_repeat(emulators, tiny_artifacts):
    """The plugin's blocks hold exactly the counted instructions; two runs give identical pipeline cycles."""
    import shutil

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler to build the instruction-count plugin (Debian package gcc; .ci/run installs it)")
    from edgec.runtimes.emulator.counts import count_instructions
    from edgec.runtimes.emulator.cpu_model import cycles
    from tests.emulator.models import feeds

    llvm = _llvm("cortex-a76")
    path = tiny_artifacts[("android", "fp32")]
    runs = [count_instructions("tflite", path, "cortex-a76", feeds(1, seed=s), blocks=True) for s in (0, 1)]
    for c in runs:
        for k in CLASSES:
            assert sum(b.execs * b.per_class[k] for b in c.blocks) == c.per_invoke[k]
    a, b = (mca.pipeline_cycles(c.blocks, c.per_invoke, "cortex-a76", llvm) for c in runs)
    assert a == b and a.coverage >= mca.COVERAGE and a.blocks >= 1
    # plausible: not below the FMLA pipes' bound (2 per cycle), not above one instruction per cycle on a 4-wide core
    assert runs[0].per_invoke["fmla"] / 2 <= a.cycles <= runs[0].total
    assert a.cycles >= 0.5 * cycles(runs[0].per_invoke, "cortex-a76")[0]


def _asm(lines: list[str], llvm: mca.Llvm) -> bytes:
    import re
    import subprocess

    r = subprocess.run([llvm.mc, "-triple=aarch64", f"-mattr={mca.MATTR}", "-show-encoding"], input="\n".join(lines),
                       capture_output=True, text=True, check=True)
    return b"".join(bytes(int(x, 16) for x in re.findall(r"0x[0-9a-f]{2}", enc))
                    for enc in re.findall(r"encoding: \[(.*?)\]", r.stdout))


def test_writeback_store_does_not_chain_an_elementwise_loop(tmp_path):
    """load, add, max, store with post-increment (ONNX Runtime's bias + ReLU pass): the next iteration's load waits
    for the base update, not for the stored data, so the loop runs at its throughput."""
    llvm = _llvm("cortex-a76")
    assert mca.split_writeback_stores(["str\tq25, [x0], #16", "stp\tx29, x30, [sp, #-16]!", "ldr\tq8, [x0], #16"]) \
        == ["str q25, [x0]", "add x0, x0, #16", "sub sp, sp, #16", "stp x29, x30, [sp]", "ldr\tq8, [x0], #16"]
    loop = _asm(["ldr q25, [x0]", "sub x1, x1, #4", "fadd v25.4s, v25.4s, v17.4s", "fmax v25.4s, v19.4s, v25.4s",
                 "str q25, [x0], #16", "cmp x1, #3", "b.hi #-24"], llvm)
    (cyc,) = mca.block_cycles([loop], "cortex-a76", llvm, tmp_path)
    # 7 instructions + the base update on a 4-wide core, one store per cycle: ~2 cycles, not the 10 of the chain
    # load (4) + fadd (2) + fmax (2) + store
    assert 1.5 <= cyc <= 3


def test_without_a_suitable_llvm_mca_the_install_line_is_given(monkeypatch, tmp_path):
    """LLVM 14's llvm-mca alone (its cortex-a76 is the A57 model) or none: no pipeline model, and doctor says why."""
    fake = tmp_path / "llvm-14" / "bin"
    fake.mkdir(parents=True)
    for tool in ("llvm-mca", "llvm-mc"):  # an llvm-mca whose -mcpu=neoverse-n1 prints the A57 model's resources
        (fake / tool).write_text("#!/bin/sh\necho 'LLVM version 14.0.6'; echo '[0]   - A57UnitB'\n")
        (fake / tool).chmod(0o755)
    monkeypatch.setattr(mca, "_candidates", lambda: [fake / "llvm-mca"])
    mca.find_llvm.cache_clear()
    try:
        assert mca.find_llvm("cortex-a76") is None and mca.find_llvm("cortex-a72") is not None
        assert "cortex-a76: none" in mca.status_line() and mca.INSTALL in mca.status_line()
        assert mca.INSTALL in mca.missing_note("cortex-a76")
    finally:
        mca.find_llvm.cache_clear()
