"""Cycles from executed-instruction counts: a per-core throughput table (instructions per cycle per class).

Each class occupies its pipelines for count / throughput cycles; the vector classes share the vector pipes, so
their occupancies add up. The invoke takes at least as long as its busiest pipeline group, and at least as long
as the front end needs to issue every instruction. This is a throughput bound (no cache misses, no dependency
stalls); the caller adds the memory term.

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
