"""Cycles from executed-instruction counts: a per-core throughput table (instructions per cycle per class).

Each class occupies its pipelines for count / throughput cycles; the vector classes share the vector pipes, so
their occupancies add up. The invoke takes at least as long as its busiest pipeline group, and at least as long
as the front end needs to issue every instruction. This is a throughput bound (no cache misses, no dependency
stalls); the caller adds the stalls on the simulated caches' DRAM misses (below) and the memory term.

Throughputs are the Q-form (128-bit) rates from the instruction tables of Arm's Software Optimization Guides:
- Cortex-A76 SOG (Arm 'Cortex-A76 Software Optimization Guide', §3 instruction characteristics): two 128-bit
  ASIMD/FP pipes V0/V1: FMLA, FMUL, SDOT/UDOT 2 per cycle, ASIMD multiply-accumulate long (SMLAL/UMLAL) and
  SADALP 1 (one pipe), other ASIMD 2; loads 2 (two load/store pipes), stores 1; branches 1 (pipe B); integer
  ALU 3 (S0-S2); decode/dispatch 4 instructions per cycle.
- Neoverse N1 SOG (Arm 'Arm Neoverse N1 Software Optimization Guide', §3): the A76 pipeline, same rates.
- Cortex-A72 SOG (Arm 'Cortex-A72 Software Optimization Guide' UAN 0016A, §3.15 ASIMD floating-point
  instructions): two 64-bit-wide FP/ASIMD pipes F0/F1, and a Q-form (128-bit) FMLA, FMUL or FADD issues to
  both ("F0, F1", throughput 1): 1 per cycle, i.e. 8 fp32 flops per cycle per core, half an A76's; most other
  Q-form ASIMD ops also take both pipes (1); multiply-accumulate long SMLAL (F0 only) 1; no dot product; one
  load pipe L, one store pipe S; branch 1; integer I0/I1 2; 3-wide decode. LLVM's scheduling model for this
  pipeline (AArch64SchedA57.td, which -mcpu=cortex-a72 uses) encodes the same: FMLA Q-form = 2 x A57UnitV.
  (Until 2026-12-07 this table said 2 for FMLA/FMUL/other, the A76 figure: wrong for A72, found when XNNPACK's
  published Raspberry Pi 4 times came out 2x slower than it predicted.)
- Cortex-A55 SOG (Arm 'Cortex-A55 Software Optimization Guide', §3): in-order, dual issue; Q-form ASIMD
  instructions use both 64-bit NEON lanes: FMLA, FMUL, SDOT 1 per cycle, multiply-accumulate long 0.5; one
  load and one store per cycle; branch 1; integer 2. QEMU names no A55, so an emulated cortex-a53 (same
  instructions but no dot product in QEMU's model) is costed with the A55 table phones' little cores have.
"""

from __future__ import annotations

from dataclasses import dataclass

VECTOR = ("fmla", "fmul", "sdot_udot", "int_mac", "vector_other")


@dataclass(frozen=True)
class Throughput:
    per_cycle: dict[str, float]  # class -> instructions per cycle
    issue_width: int
    source: str


_A76 = {"fmla": 2, "fmul": 2, "sdot_udot": 2, "int_mac": 1, "vector_other": 2, "load": 2, "store": 1, "branch": 1,
        "other": 3}
TABLES: dict[str, Throughput] = {
    "cortex-a76": Throughput(_A76, 4, "Arm Cortex-A76 Software Optimization Guide"),
    "neoverse-n1": Throughput(_A76, 4, "Arm Neoverse N1 Software Optimization Guide"),
    "cortex-a72": Throughput({"fmla": 1, "fmul": 1, "sdot_udot": 1, "int_mac": 1, "vector_other": 1, "load": 1,
                              "store": 1, "branch": 1, "other": 2}, 3, "Arm Cortex-A72 Software Optimization Guide"),
    "cortex-a53": Throughput({"fmla": 1, "fmul": 1, "sdot_udot": 1, "int_mac": 0.5, "vector_other": 1, "load": 1,
                              "store": 1, "branch": 1, "other": 2}, 2,
                             "Arm Cortex-A55 Software Optimization Guide (A55 little cores, emulated as A53)"),
}


def cycles(per_invoke: dict[str, int], core: str) -> tuple[float, str]:
    """(cycles per invoke on one core, the bound that set them: vector | load/store | branch | integer | issue)."""
    t = TABLES[core]
    r = t.per_cycle
    groups = {
        "vector": sum(per_invoke.get(c, 0) / r[c] for c in VECTOR),
        "load/store": max(per_invoke.get("load", 0) / r["load"], per_invoke.get("store", 0) / r["store"]),
        "branch": per_invoke.get("branch", 0) / r["branch"],
        "integer": per_invoke.get("other", 0) / r["other"],
        "issue": sum(per_invoke.values()) / t.issue_width,
    }
    bound = max(groups, key=groups.get)
    return groups[bound], bound


# ---------------------------------------------------------------- the memory hierarchy's stall term
#
# The plugin simulates the core's data caches (L1D, L2, last level; 64-byte lines everywhere) and counts the
# loads that miss each level. Which misses cost time, and how, follows interval analysis of out-of-order cores
# (Karkhanis & Smith, "A First-Order Superscalar Processor Model", ISCA 2004; Eyerman, Eeckhout, Karkhanis &
# Smith, "A Mechanistic Performance Model for Superscalar Out-of-Order Processors", ACM TOCS 27(2), 2009):
# - the core runs at its throughput bound between miss events, and a long-latency load miss adds a stall on
#   top of it: cycles = throughput cycles + stall cycles (additive, not max: while the reorder buffer is full
#   behind a miss to DRAM, the pipes issue nothing);
# - a miss the reorder buffer can hide costs nothing: the core keeps dispatching for ROB / dispatch-width
#   cycles after it, so only the part of the latency beyond that window stalls. L2 hits (A76 ~9-11 cycles) and
#   L3 hits (tens of cycles) fit the A76's 128-entry / 4-wide window (32 cycles); DRAM (~240 cycles at 2.4 GHz)
#   does not;
# - independent misses that are outstanding together overlap: their stalls divide by the memory-level
#   parallelism, at most the number of misses the core can have in flight (its TRM).
# Stores retire into the store buffer and do not stall (they are counted, not charged). Hardware prefetchers
# are not simulated, so streaming misses are charged as demand misses: the stall term is an upper bound for
# prefetch-friendly kernels, on top of a throughput bound that is a lower bound.


@dataclass(frozen=True)
class Caches:
    l1d: tuple[int, int]  # (bytes, ways), fixed by the core
    l2_ways: int
    l2_shared: bool  # the L2 is the cluster's last level (no L3)
    rob: int  # reorder-buffer entries
    dispatch: int  # instructions dispatched per cycle
    mlp: int  # outstanding load misses beyond the L2 (or the L1 where the L2 is the last level)
    source: str


CACHES: dict[str, Caches] = {
    # Arm Cortex-A76 Core TRM (100798_0300): §A6.1.2 L1 data cache 64 KB, 4-way, 64-byte lines, pseudo-LRU;
    # §A7.1 private L2 128/256/512 KB, 8-way, 64-byte lines; Table A7-1 L2 read issuing capability 22/34/46
    # outstanding reads by the configured transaction-queue size (the smallest, 22: the SoCs do not publish
    # theirs). The L3 is the DynamIQ Shared Unit's, 16-way (Arm DSU TRM, L3 memory system). 128-entry reorder
    # buffer, 4-wide decode/dispatch (Arm's Cortex-A76 launch material, 2018).
    "cortex-a76": Caches((64 << 10, 4), 8, False, 128, 4, 22, "Arm Cortex-A76 TRM §A6.1, §A7.1, Table A7-1"),
    "neoverse-n1": Caches((64 << 10, 4), 8, False, 128, 4, 22, "Arm Neoverse N1 TRM (the A76 memory system)"),
    # Arm Cortex-A72 MPCore TRM (100095): §6.1 L1 data cache 32 KB, 2-way, 64-byte lines; §6.4 "up to six 64-byte
    # cache line requests can be outstanding" per core; §7.1 shared L2 512 KB-4 MB, 16-way, 64-byte lines, the
    # last level (no L3). 128-entry reorder buffer, 3-wide dispatch (Arm's Cortex-A72 launch material).
    "cortex-a72": Caches((32 << 10, 2), 16, True, 128, 3, 6, "Arm Cortex-A72 MPCore TRM §6.1, §6.4, §7.1"),
}
L3_WAYS = 16  # DSU L3 (and the Snapdragon 855's L3, a DSU derivative)
# Load-to-use latency of a DRAM access seen from the core. Neither Arm's TRMs/SOGs nor the boards' briefs give
# one (it is the SoC's, not the core's); 100 ns is the order that pointer-chasing measurements of LPDDR4/4X
# boards report, a round figure, not fitted to any latency table.
DRAM_LATENCY_NS = 100.0


def hierarchy(core: str, l2_kb: float | None, llc_mb: float | None) -> list[tuple[int, int]] | None:
    """[(bytes, ways)] of the L1D, L2 and last level the plugin simulates for `core` on a device with these
    cache sizes; None when the core's caches or the device's sizes are unknown (no stall term then)."""
    c = CACHES.get(core)
    if c is None or not llc_mb:
        return None
    if c.l2_shared:  # the L2 is the last level
        return [c.l1d, (int(llc_mb * (1 << 20)), c.l2_ways)]
    if not l2_kb:
        return None
    return [c.l1d, (int(l2_kb * 1024), c.l2_ways), (int(llc_mb * (1 << 20)), L3_WAYS)]


def stall_cycles(cache: list[dict[str, int]], core: str, clock_ghz: float) -> float:
    """Cycles per invoke the core waits on DRAM: the last level's load misses x the DRAM latency beyond the
    reorder buffer's window, overlapped `mlp` at a time. Hits in the levels above fit the window (see above)."""
    c = CACHES[core]
    window = c.rob / c.dispatch
    beyond = max(DRAM_LATENCY_NS * clock_ghz - window, 0.0)
    return cache[-1]["load_misses"] * beyond / c.mlp


def dram_bytes(cache: list[dict[str, int]]) -> int:
    """Bytes per invoke between the last level and DRAM: line fills (load and store misses) and dirty evictions."""
    last = cache[-1]
    return 64 * (last["load_misses"] + last["store_misses"] + last["writebacks"])
