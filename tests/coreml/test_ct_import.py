"""coremltools' "Failed to load _ML...Proxy" start-up noise is dropped; its other warnings are not."""

import logging
import subprocess
import sys


def test_import_through_edgec_is_quiet():
    code = ("import edgec.lower.coreml.backend, edgec.runtimes.mil_interp;"
            "from edgec.runtimes.ct_quiet import coremltools; ct = coremltools(); import coremltools.models")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Failed to load" not in r.stderr, r.stderr


def test_other_coremltools_warnings_still_show(caplog):
    from edgec.runtimes.ct_quiet import quiet_native_proxy_warnings

    quiet_native_proxy_warnings()
    quiet_native_proxy_warnings()  # idempotent
    logger = logging.getLogger("coremltools")
    assert sum(type(f).__name__ == "_NativeProxyFilter" for f in logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger="coremltools"):
        logger.warning("Failed to load _MLModelProxy: No module named 'coremltools.libcoremlpython'")
        logger.warning("Failed to load '_MLGPUComputeDeviceRemoteProxy'. Remote device functionality ...")
        logger.warning("scikit-learn version 9.9 is not supported")
    assert [r.getMessage() for r in caplog.records] == ["scikit-learn version 9.9 is not supported"]
