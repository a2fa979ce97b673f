"""The emulator fixtures: set up once per machine in the edgec cache (about 40 s the first time, then instant)."""

from __future__ import annotations

import shutil

import onnx
import pytest

from tests.emulator.models import few_convs


@pytest.fixture(scope="session")
def emulators():
    """{core: Emulator} for the cores the tests use; skips only where QEMU user-mode is not installed."""
    if shutil.which("qemu-aarch64") is None and shutil.which("qemu-aarch64-static") is None:
        pytest.skip("qemu-aarch64 is not installed (Debian package qemu-user; .ci/run installs it with apt-get)")
    if shutil.which("mmdebstrap") is None:
        from edgec.runtimes.emulator.setup import (
            _paths,
            emulator_root,
            runtime_versions,
        )

        if not _paths(emulator_root(), runtime_versions())[0].is_dir():
            pytest.skip("mmdebstrap is not installed (Debian package mmdebstrap; .ci/run installs it with apt-get)")
    from edgec.runtimes.emulator.setup import ensure

    return {core: ensure(core) for core in ("cortex-a72", "cortex-a76", "neoverse-n1")}


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory):
    """{(target, precision): artifact path} for the few-conv net: android/ort-mobile x fp32/int8."""
    from edgec.api import BuildOptions, build

    d = tmp_path_factory.mktemp("emu_artifacts")
    onnx.save(few_convs(), str(d / "few.onnx"))
    out = {}
    for q in ("none", "int8"):
        for target in ("android", "ort-mobile"):
            opts = BuildOptions(target=target, out_dir=d / f"{target}-{q}", validate=False, quantize=q,
                                calibration="random" if q == "int8" else None)
            with pytest.warns() if q == "int8" else _nothing():
                r = build(d / "few.onnx", opts)
            out[(target, "fp32" if q == "none" else "int8")] = r.result.artifacts[0].final_path
    return out


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
