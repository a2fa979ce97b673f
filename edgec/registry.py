"""The one registry helper: name -> Rule(fn, check, note, flags), filled by a decorator, found by importing a package.

Every registry in edgec is one of these: TFLite and CoreML lowerings (`@lowers`), the MIL interpreter's ops
(`@mil_op`), the estimator's cost functions (`@costs`) and the graph passes (`@graph_pass`). Each keeps its own
decorator name and signature; they all register here, so the duplicate check, the notes and the discovery
(import every module of the package that holds the rules) are written once.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Rule:
    fn: Callable
    check: Callable[..., str | None] | None = None  # why this instance cannot be handled, or None (runs first)
    note: str = ""  # one line for tables (`edgec targets --ops`); the function's docstring by default
    flags: dict[str, Any] = field(default_factory=dict)  # registry-specific facts (e.g. a TFLite rule's int8 kernel)

    @property
    def lower(self) -> Callable:  # the CoreML registry's historical name for fn
        return self.fn


def first_doc_line(fn: Callable) -> str:
    return (fn.__doc__ or "").strip().split("\n")[0]


def import_all(package: str) -> None:
    """Import every module of `package` whose name does not start with '_' (new files are found by themselves)."""
    pkg = importlib.import_module(package)
    for name in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
        if not name.startswith("_"):
            importlib.import_module(f"{package}.{name}")


class Registry(dict):
    """name -> Rule. `what` names the registry in errors; `package`, when given, holds the modules that register
    rules, imported on the first `load()`."""

    def __init__(self, what: str, package: str | None = None):
        super().__init__()
        self.what = what
        self.package = package
        self._loaded = package is None

    def add(self, names: tuple[str, ...], fn: Callable, check: Callable | None = None, note: str = "",
            **flags) -> Callable:
        for name in names:
            if name in self:
                raise RuntimeError(f"two {self.what} registered for '{name}': {self[name].fn.__qualname__} and "
                                   f"{fn.__qualname__}")
            self[name] = Rule(fn, check, note or first_doc_line(fn), dict(flags))
        return fn

    def register(self, *names: str, check: Callable | None = None, note: str = "", **flags):
        """The decorator: `@registry.register("Conv", check=..., note=...)`."""

        def deco(fn: Callable) -> Callable:
            return self.add(names, fn, check, note, **flags)

        return deco

    def load(self) -> "Registry":
        if not self._loaded:
            self._loaded = True
            import_all(self.package)
        return self

    def with_flag(self, flag: str) -> frozenset[str]:
        """Names whose rule carries a true `flag`."""
        return frozenset(n for n, r in self.load().items() if r.flags.get(flag))
