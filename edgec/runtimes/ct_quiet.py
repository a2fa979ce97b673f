"""Import coremltools without its Linux start-up noise.

On machines without Apple's native CoreML library (Linux, Windows) `import coremltools` logs one
"Failed to load _ML...Proxy: No module named 'coremltools.libcoremlpython'" warning per native proxy
class. They say only "this machine cannot run predict()", which edgec already handles (MIL
interpreter). We drop exactly those records on the "coremltools" logger; every other warning stays.
"""

from __future__ import annotations

import logging
import re

# the messages coremltools/models/{model,compute_plan}.py and ml_program/experimental/compute_plan_utils.py log
_NATIVE_PROXY = re.compile(r"^Failed to load '?_ML\w*Proxy'?")


class _NativeProxyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _NATIVE_PROXY.match(str(record.msg))


def quiet_native_proxy_warnings() -> None:
    """Install the filter once (before or after coremltools is imported; the logger object is shared)."""
    logger = logging.getLogger("coremltools")
    if not any(isinstance(f, _NativeProxyFilter) for f in logger.filters):
        logger.addFilter(_NativeProxyFilter())


def coremltools():
    """The coremltools module, imported quietly."""
    quiet_native_proxy_warnings()
    import coremltools as ct

    return ct
