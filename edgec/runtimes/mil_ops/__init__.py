"""numpy implementations of MIL ops, one small function per op, registered by `@mil_op("name")`.

Each function takes the op's inputs as keyword arguments (numpy arrays, python str for string
constants, lists for tuple inputs such as concat's `values`) and returns one array or a tuple of
arrays. The interpreter casts results to the dtype the program declares for each output, so fp16
programs round (and overflow to inf) exactly where the program says the value is fp16.
Semantics follow coremltools/converters/mil/mil/ops/defs/iOS15..iOS18.
"""

from __future__ import annotations

import importlib
from typing import Callable

OPS: dict[str, Callable] = {}
# op type -> check(consts) -> reason or None: rejects attribute values we do not implement at load time
CHECKS: dict[str, Callable[[dict], str | None]] = {}

_FAMILIES = ("elementwise", "activation", "conv", "linalg", "reduce", "norm", "shape", "image", "quant", "classify")


def mil_op(*names: str, check: Callable[[dict], str | None] | None = None):
    """Register `fn` as the implementation of MIL op type(s) `names`. `check` receives the op's
    constant inputs (name -> value) and returns why this op instance is unsupported, or None."""

    def register(fn: Callable) -> Callable:
        for name in names:
            if name in OPS:
                raise RuntimeError(f"MIL op '{name}' registered twice")
            OPS[name] = fn
            if check is not None:
                CHECKS[name] = check
        return fn

    return register


def registry() -> dict[str, Callable]:
    """All op implementations (importing every family module registers its ops)."""
    for family in _FAMILIES:
        importlib.import_module(f"{__name__}.{family}")
    return OPS
