"""Op families; importing this package registers every lowering in registry.REGISTRY."""

from edgec.registry import import_all

import_all(__name__)  # every module in this folder is an op family (new files are picked up by themselves)
