"""numpy implementations of MIL ops, one small function per op, registered by `@mil_op("name")`.

Each function takes the op's inputs as keyword arguments (numpy arrays, python str for string
constants, lists for tuple inputs such as concat's `values`) and returns one array or a tuple of
arrays. The interpreter casts results to the dtype the program declares for each output, so fp16
programs round (and overflow to inf) exactly where the program says the value is fp16.
Semantics follow coremltools/converters/mil/mil/ops/defs/iOS15..iOS18.
"""

from __future__ import annotations

from typing import Callable

from edgec.registry import Registry

# op type -> Rule(fn, check): check(consts) -> reason or None rejects attribute values we do not implement at load time
RULES = Registry("MIL op implementations", package=__name__)


def mil_op(*names: str, check: Callable[[dict], str | None] | None = None):
    """Register `fn` as the implementation of MIL op type(s) `names`. `check` receives the op's
    constant inputs (name -> value) and returns why this op instance is unsupported, or None."""
    return RULES.register(*names, check=check)


def registry() -> dict[str, Callable]:
    """All op implementations (importing every family module registers its ops)."""
    return {name: rule.fn for name, rule in RULES.load().items()}
