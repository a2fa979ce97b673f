"""Op families; importing this package registers every lowering in registry.REGISTRY."""

import importlib
import pkgutil

# every module in this folder is an op family (new family files are picked up without editing this file)
for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _m.startswith("_"):
        importlib.import_module(f"{__name__}.{_m}")
