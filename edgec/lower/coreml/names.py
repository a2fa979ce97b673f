"""Our own ONNX -> CoreML name map.

coremltools' NameSanitizer renames anything that is not [A-Za-z_][A-Za-z0-9_]* (and a few reserved
words) without telling anyone, so we sanitise every name ourselves first: then the names in the
.mlpackage are exactly the ones recorded here, and runners can translate ONNX names both ways.
"""

from __future__ import annotations

import re

# MIL's reserved words (coremltools NameSanitizer) plus "main", the function name
_RESERVED = {
    "any", "bool", "program", "func", "tensor", "list", "dict", "tuple", "true", "false", "string",
    "bf16", "fp16", "fp32", "fp64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "state", "main",
}


def sanitize(name: str) -> str:
    """A valid MIL identifier close to `name` (not yet made unique)."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name) or "v"
    if not re.match(r"[A-Za-z]", out):  # leading digit or underscore: coremltools would prefix it
        out = "v_" + out
    if out in _RESERVED:
        out += "_"
    return out


class NameTable:
    """Hands out unique MIL names; ONNX tensor names are reserved first so they keep their spelling."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.onnx_to_mil: dict[str, str] = {}

    def reserve(self, onnx_name: str) -> str:
        if onnx_name not in self.onnx_to_mil:
            self.onnx_to_mil[onnx_name] = self.fresh(sanitize(onnx_name))
        return self.onnx_to_mil[onnx_name]

    def fresh(self, base: str) -> str:
        base = sanitize(base)
        name, i = base, 1
        while name in self.used:
            name = f"{base}_{i}"
            i += 1
        self.used.add(name)
        return name
