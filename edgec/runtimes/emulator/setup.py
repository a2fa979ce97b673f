"""Sets up, once per machine, what running the aarch64 runtimes under QEMU user-mode needs, in the edgec cache.

<cache>/emulator/
  rootfs-bookworm-arm64/        Debian arm64 files: python3, libstdc++6, libgomp1 (mmdebstrap --variant=extract:
                                 no maintainer scripts run, no binfmt_misc, no chroot)
  site-<versions>/               the aarch64 wheels of the onnxruntime / ai-edge-litert / numpy versions installed
                                 here, unpacked (the ARM run uses the same runtime releases as the host run)
  cores/<core>/                  the `-L` prefix QEMU is given for that core: links to the rootfs plus a
                                 proc/cpuinfo describing the core (see cores.py)
Every piece is built in a temp folder and renamed into place, so its presence means it is complete; a file lock
serialises concurrent setups, and a ready emulator costs a few stat calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from edgec.errors import DeviceError
from edgec.paths import cache_dir, exclusive
from edgec.runtimes.emulator.cores import (
    CORES,
    DEFAULT_CORE,
    check_core,
    cpuinfo_text,
    features,
)

SUITE = "bookworm"
ROOTFS_PACKAGES = ("python3", "libstdc++6", "libgomp1")
WHEELS = ("onnxruntime", "ai-edge-litert", "numpy")  # distributions whose installed versions the guest mirrors
_LINKED = ("bin", "etc", "lib", "lib64", "sbin", "usr")  # rootfs entries a core prefix shows (not proc/dev/tmp)
_SETUP_TIMEOUT_S = 900
# a site folder for other runtime versions is removed when a new one is set up, unless an edgec with those
# versions (another virtualenv on this machine) used it within this long: a running guest imports from it
STALE_AFTER_S = 24 * 3600
_USED = ".last-used"


@dataclass
class Emulator:
    """A ready emulator for one core: `command()` runs the guest's python3 under qemu-aarch64."""

    qemu: Path
    rootfs: Path
    site: Path
    prefix: Path
    core: str
    versions: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str, plugin: list[str] | None = None) -> list[str]:
        extra = ["-plugin", ",".join(plugin)] if plugin else []
        return [str(self.qemu), "-cpu", self.core, "-L", str(self.prefix), *extra,
                str(self.prefix / "usr/bin/python3"), *args]

    def env(self, home: Path | str | None = None) -> dict[str, str]:
        """The guest's whole environment: nothing of the host's (its PYTHONPATH, QEMU_* variables) leaks in."""
        return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home or tempfile.gettempdir()),
                "PYTHONPATH": str(self.site), "PYTHONNOUSERSITE": "1", "PYTHONHASHSEED": "0",
                "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}


def emulator_root() -> Path:
    return cache_dir() / "emulator"


def qemu_binary() -> Path:
    for name in ("qemu-aarch64", "qemu-aarch64-static"):
        if (p := shutil.which(name)) is not None:
            return Path(p)
    raise DeviceError(
        "The ARM emulator needs QEMU user-mode (qemu-aarch64), which is not on PATH. Install the Debian/Ubuntu "
        "package `qemu-user` (apt-get install qemu-user; or `qemu-user-static`), then run `edgec emulator setup`."
    )


def runtime_versions() -> dict[str, str]:
    try:
        return {d: metadata.version(d) for d in WHEELS}
    except metadata.PackageNotFoundError as e:
        raise DeviceError(f"The ARM emulator mirrors the installed runtimes, but '{e.name}' is not installed here: "
                          f"pip install {e.name}.") from None


def _paths(root: Path, versions: dict[str, str]) -> tuple[Path, Path]:
    tag = "-".join(f"{d}{v}" for d, v in sorted(versions.items()))
    return root / f"rootfs-{SUITE}-arm64", root / f"site-{tag}"


def status() -> dict:
    """What `edgec doctor` shows: no setup, no download."""
    root = emulator_root()
    qemu = next((shutil.which(n) for n in ("qemu-aarch64", "qemu-aarch64-static") if shutil.which(n)), None)
    try:
        versions = runtime_versions()
    except DeviceError:
        versions = {}
    rootfs, site = _paths(root, versions)
    cores = sorted(p.name for p in (root / "cores").glob("[!.]*") if (p / "proc/cpuinfo").exists())
    return {"qemu": qemu, "qemu_version": _qemu_version(qemu) if qemu else None,
            "mmdebstrap": shutil.which("mmdebstrap"), "root": str(root), "rootfs": rootfs.is_dir(),
            "site": site.is_dir(), "cores": cores}


def status_line() -> str:
    st = status()
    if st["qemu"] is None:
        return "qemu-aarch64 not found (apt-get install qemu-user)"
    if not (st["rootfs"] and st["site"] and st["cores"]):
        need = "" if st["mmdebstrap"] or st["rootfs"] else "; apt-get install mmdebstrap first"
        return f"QEMU {st['qemu_version']}; not set up (`edgec emulator setup`, or on first --emulator use{need})"
    size = sum(f.stat().st_size for f in Path(st["root"]).rglob("*") if f.is_file() and not f.is_symlink())
    return f"QEMU {st['qemu_version']}; ready in {st['root']} ({size / 1e6:.0f} MB): {', '.join(st['cores'])}"


def _qemu_version(qemu: str) -> str:
    try:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.split("\n")[0].replace("qemu-aarch64 version ", "")


def ensure(core: str = DEFAULT_CORE, log=None) -> Emulator:
    """The emulator for `core`, set up first if needed (idempotent; the second call is a few stat calls)."""
    check_core(core)
    qemu = qemu_binary()
    versions = runtime_versions()
    root = emulator_root()
    rootfs, site = _paths(root, versions)
    prefix = root / "cores" / core
    if not (rootfs.is_dir() and site.is_dir() and (prefix / "proc/cpuinfo").exists()):
        root.mkdir(parents=True, exist_ok=True)
        with exclusive(root / "setup.lock"):
            _clean_temps(root)
            if not rootfs.is_dir():
                _timed(log, f"arm64 Debian {SUITE} files", lambda: _make_rootfs(rootfs))
            if not (prefix / "proc/cpuinfo").exists():
                _timed(log, f"{core} prefix and /proc/cpuinfo", lambda: _make_prefix(qemu, rootfs, prefix, core))
            if not site.is_dir():
                emu = Emulator(qemu, rootfs, site, prefix, core, versions)
                _timed(log, "aarch64 wheels " + ", ".join(f"{d}=={v}" for d, v in versions.items()),
                       lambda: _make_site(emu, versions))
                _touch(site)
                removed = remove_stale_sites(root, keep=site)
                if log and removed:
                    log(f"removed the aarch64 wheels of other runtime versions: {', '.join(p.name for p in removed)}")
    _touch(site)
    return Emulator(qemu, rootfs, site, prefix, core, versions)


def _touch(site: Path) -> None:
    try:
        (site / _USED).touch()
    except OSError:  # a read-only cache still runs; its folders are just never found stale
        pass


def remove_stale_sites(root: Path, keep: Path, now: float | None = None) -> list[Path]:
    """Removes the site-* folders (unpacked aarch64 wheels, ~160 MB each) of runtime versions no longer installed:
    every one but `keep` that no edgec used within STALE_AFTER_S. Called under the setup lock; a folder is
    renamed away before it is deleted, so a half-deleted one never looks complete."""
    now = time.time() if now is None else now
    removed = []
    for site in sorted(root.glob("site-*")):
        if site == keep or not site.is_dir():
            continue
        stamp = site / _USED
        used = (stamp if stamp.exists() else site).stat().st_mtime
        if now - used < STALE_AFTER_S:
            continue
        gone = root / f".tmp-stale-{site.name}"
        os.rename(site, gone)
        shutil.rmtree(gone, ignore_errors=True)
        removed.append(site)
    return removed


def ensure_all(log=None) -> list[Emulator]:
    return [ensure(c, log) for c in CORES]


def _clean_temps(root: Path) -> None:
    # leftovers of a setup that was killed: only ever removed under the lock
    for p in list(root.glob(".tmp-*")) + list((root / "cores").glob(".tmp-*")):
        shutil.rmtree(p, ignore_errors=True)


def _timed(log, what: str, fn) -> None:
    t0 = time.perf_counter()
    if log:
        log(f"setting up {what} ...")
    fn()
    if log:
        log(f"  done in {time.perf_counter() - t0:.1f} s")


def _run(cmd: list[str], what: str, timeout: float = _SETUP_TIMEOUT_S, **kw) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"ARM emulator setup: {what} took longer than {timeout:.0f} s ({' '.join(cmd[:3])} ...). "
                          f"Check the network, then rerun `edgec emulator setup`.") from None
    if r.returncode != 0:
        tail = " ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
        raise DeviceError(f"ARM emulator setup: {what} failed (exit {r.returncode}): {tail}")
    return r


def _make_rootfs(rootfs: Path) -> None:
    if shutil.which("mmdebstrap") is None:
        raise DeviceError(
            "The ARM emulator's first setup needs `mmdebstrap` to fetch Debian's arm64 python3 and C++ runtime "
            "libraries, and it is not on PATH. Install the Debian/Ubuntu package `mmdebstrap` "
            "(apt-get install mmdebstrap), then run `edgec emulator setup`."
        )
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-rootfs-", dir=rootfs.parent))
    target = tmp / "fs"
    # extract: unpack the .debs only (no maintainer scripts, so no emulation and no root needed: mmdebstrap
    # picks its unshare mode when run as a normal user)
    _run(["mmdebstrap", "--quiet", "--variant=extract", "--arch=arm64", f"--include={','.join(ROOTFS_PACKAGES)}",
          SUITE, str(target)], f"mmdebstrap {SUITE} arm64")
    if not (target / "usr/bin/python3").exists():
        raise DeviceError(f"ARM emulator setup: mmdebstrap finished but {target}/usr/bin/python3 is missing.")
    os.rename(target, rootfs)
    shutil.rmtree(tmp, ignore_errors=True)


def _processors() -> int:
    # as many processors as the host kernel reports possible: the runtime reads /sys (the host's) too
    try:
        last = Path("/sys/devices/system/cpu/possible").read_text().strip().split(",")[-1].split("-")[-1]
        return int(last) + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


def _make_prefix(qemu: Path, rootfs: Path, prefix: Path, core: str) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    # the feature bits come from QEMU itself (AT_HWCAP of the emulated core), so they always match -cpu
    probe = ("import ctypes; g = ctypes.CDLL(None).getauxval; g.restype = ctypes.c_ulong; "
             "print(g(16), g(26))")
    r = _run([str(qemu), "-cpu", core, "-L", str(rootfs), str(rootfs / "usr/bin/python3"), "-S", "-c", probe],
             f"reading the {core} feature bits", timeout=300, env={"PATH": "/usr/bin", "LANG": "C.UTF-8"})
    hwcap, hwcap2 = (int(x) for x in r.stdout.split())
    names = features(hwcap, hwcap2)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{core}-", dir=prefix.parent))  # a sibling: same relative links
    write_prefix(tmp, rootfs, cpuinfo_text(CORES[core], names, _processors()))
    (tmp / "core.json").write_text(json.dumps({"core": core, "features": names}, indent=1) + "\n")
    os.rename(tmp, prefix)


def write_prefix(folder: Path, rootfs: Path, cpuinfo: str) -> None:
    """A QEMU -L prefix: the rootfs's system folders (relative links: the cache may move) and a /proc/cpuinfo."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for name in _LINKED:
        if (rootfs / name).exists():
            os.symlink(os.path.relpath(rootfs / name, folder), folder / name)
    (folder / "proc").mkdir()
    (folder / "proc/cpuinfo").write_text(cpuinfo)


def _download_platforms() -> list[str]:
    # pip takes --platform literally: list every manylinux tag bookworm's glibc 2.36 runs
    return ["manylinux2014_aarch64"] + [f"manylinux_2_{m}_aarch64" for m in range(17, 37)]


def _make_site(emu: Emulator, versions: dict[str, str]) -> None:
    pyver = os.readlink(emu.rootfs / "usr/bin/python3").removeprefix("python")  # "3.11"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-site-", dir=emu.site.parent))
    wheels, site = tmp / "wheels", tmp / "site"
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--only-binary=:all:", "--python-version", pyver, "--dest", str(wheels)]
    for p in _download_platforms():
        cmd += ["--platform", p]
    _run(cmd + [f"{d}=={v}" for d, v in versions.items()], "pip download of the aarch64 wheels")
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            z.extractall(site)
            for info in z.infolist():  # zipfile drops the exec bits; shared objects keep working without them
                mode = info.external_attr >> 16
                if mode & 0o111:
                    os.chmod(site / info.filename, mode & 0o777)
    # first import under emulation, with bytecode writes on: it checks the wheels run on this core and leaves
    # the stdlib's and the wheels' .pyc files behind (Debian compiles them in maintainer scripts, which extract
    # skips), which makes every later guest start several seconds faster
    env = {**Emulator(emu.qemu, emu.rootfs, site, emu.prefix, emu.core).env(tmp)}
    env.pop("PYTHONDONTWRITEBYTECODE")
    _run(emu.command("-c", "import numpy, onnxruntime, ai_edge_litert.interpreter"),
         f"importing the runtimes under qemu-aarch64 -cpu {emu.core}", timeout=600, env=env)
    shutil.rmtree(wheels)
    os.rename(site, emu.site)
    shutil.rmtree(tmp, ignore_errors=True)
