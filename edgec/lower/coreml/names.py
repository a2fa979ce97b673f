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


# Xcode generates a Swift class from the .mlpackage whose members are the feature (input/output) names, next
# to members of its own: a feature spelled as a Swift keyword or as one of those members would not compile in
# the app. `<feature>ShapedArray` is generated for every multi-array feature, so a name ending so may clash too.
SWIFT_RESERVED = {
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout",
    "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public", "rethrows",
    "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue", "default", "defer",
    "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw", "switch", "where",
    "while", "Any", "as", "await", "false", "is", "nil", "self", "Self", "super", "throws", "true", "try", "Type",
    "Protocol", "some", "async",
    # members of the generated Input/Output/model classes (MLFeatureProvider and Xcode's own)
    "featureNames", "featureValue", "provider", "model", "prediction", "predictions", "load",
    "urlOfModelInThisBundle", "configuration",
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

    def feature(self, onnx_name: str) -> str:
        """A model input's or output's name: a MIL identifier that is also a Swift member name Xcode's generated
        class can use (renamed with a trailing '_' otherwise; the map is in the manifest's name_map)."""
        if onnx_name not in self.onnx_to_mil:
            base = sanitize(onnx_name)
            if base in SWIFT_RESERVED or base.endswith("ShapedArray"):
                base += "_"
            self.onnx_to_mil[onnx_name] = self.fresh(base)
        return self.onnx_to_mil[onnx_name]

    def fresh(self, base: str) -> str:
        base = sanitize(base)
        name, i = base, 1
        while name in self.used:
            name = f"{base}_{i}"
            i += 1
        self.used.add(name)
        return name
