"""The ARM cores QEMU user-mode emulates by name, and the /proc/cpuinfo each one must be shown.

Runtimes pick kernels from /proc/cpuinfo (pytorch's cpuinfo library in ONNX Runtime and XNNPACK), so the file
the emulated process reads must describe the emulated core: QEMU's `-L` prefix redirects the read to
PREFIX/proc/cpuinfo. A file naming another core makes the runtime pick kernels the core lacks (a Neoverse-N1
file under `-cpu cortex-a72` selects SDOT kernels and dies of SIGILL). `max` is never offered: its SVE/SME/i8mm
kernels disagree with every real phone core.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Core:
    name: str  # QEMU's -cpu name
    part: int  # MIDR_EL1 part number (Arm Ltd, implementer 0x41)
    variant: int
    revision: int
    arch: str  # what it stands in for, shown by `edgec doctor`


# MIDR values are the ones QEMU 7.2 reports for each model (target/arm/cpu64.c), i.e. the real silicon's r/p
CORES: dict[str, Core] = {c.name: c for c in (
    Core("cortex-a35", 0xD04, 0, 0, "Armv8.0, in-order little core"),
    Core("cortex-a53", 0xD03, 0, 4, "Armv8.0, in-order little core (phones' little cores)"),
    Core("cortex-a57", 0xD07, 1, 0, "Armv8.0 big core"),
    Core("cortex-a72", 0xD08, 0, 3, "Armv8.0 big core (Raspberry Pi 4), no dot product"),
    Core("cortex-a76", 0xD0B, 4, 1, "Armv8.2 + dot product, fp16 (Raspberry Pi 5, phones' big cores)"),
    Core("neoverse-n1", 0xD0C, 4, 1, "Armv8.2 + dot product, fp16 (the server twin of Cortex-A76)"),
)}

DEFAULT_CORE = "cortex-a76"

# Linux arm64 AT_HWCAP / AT_HWCAP2 bit order (arch/arm64/include/uapi/asm/hwcap.h): the names /proc/cpuinfo's
# Features line uses
HWCAP = (
    "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp", "cpuid",
    "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512", "sve", "asimdfhm",
    "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb", "paca", "pacg",
)
HWCAP2 = (
    "dcpodp", "sve2", "sveaes", "svepmull", "svebitperm", "svesha3", "svesm4", "flagm2", "frint", "svei8mm",
    "svef32mm", "svef64mm", "svebf16", "i8mm", "bf16", "dgh", "rng", "bti",
)


def check_core(name: str, where: str = "--emulator") -> Core:
    from edgec.errors import UsageError

    if name not in CORES:
        hint = " (`max` enables SVE/SME kernels no phone runs; name a real core)" if name == "max" else ""
        raise UsageError(f"{where}: unknown core '{name}'{hint}. Emulated cores: {', '.join(CORES)}.")
    return CORES[name]


def features(hwcap: int, hwcap2: int) -> list[str]:
    return ([n for i, n in enumerate(HWCAP) if hwcap >> i & 1]
            + [n for i, n in enumerate(HWCAP2) if hwcap2 >> i & 1])


def cpuinfo_text(core: Core, feature_names: list[str], processors: int) -> str:
    """The arm64 kernel's /proc/cpuinfo layout, one block per processor."""
    block = (f"BogoMIPS\t: 50.00\nFeatures\t: {' '.join(feature_names)}\nCPU implementer\t: 0x41\n"
             f"CPU architecture: 8\nCPU variant\t: {core.variant:#x}\nCPU part\t: {core.part:#05x}\n"
             f"CPU revision\t: {core.revision}\n\n")
    return "".join(f"processor\t: {i}\n{block}" for i in range(processors))
