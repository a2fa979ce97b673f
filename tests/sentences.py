"""Real English sentences for text-model tests: the first sentence of the standard library's own docstrings.

    from tests.sentences import sentences
    calib, held_out = sentences(16), sentences(60, skip=16)

Deterministic: a fixed list of modules, their public functions and classes in sorted order, the docstring's first
sentence with whitespace collapsed, kept when it has 6..40 words and no doctest or signature line; duplicates
dropped. Nothing is downloaded; the text is whatever this interpreter's standard library says.
"""

from __future__ import annotations

import importlib
import inspect
import re

MODULES = ("argparse", "base64", "bisect", "calendar", "collections", "csv", "datetime", "difflib", "email.utils",
           "fnmatch", "fractions", "functools", "glob", "gzip", "hashlib", "heapq", "html", "http.client",
           "inspect", "io", "itertools", "json", "logging", "os", "os.path", "pathlib", "pickle", "random", "re",
           "shutil", "socket", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap",
           "threading", "urllib.parse", "uuid", "zipfile")


def sentences(n: int, skip: int = 0) -> list[str]:
    """The sentences [skip, skip + n) of the deterministic list; raises if the library yields fewer."""
    found = _all()
    if len(found) < skip + n:
        raise ValueError(f"the standard library docstrings gave {len(found)} sentences, {skip + n} asked")
    return found[skip:skip + n]


_cache: list[str] = []


def _all() -> list[str]:
    if _cache:
        return _cache
    seen = set()
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        for name in sorted(dir(mod)):
            if name.startswith("_"):
                continue
            obj = getattr(mod, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)):
                continue
            s = _first_sentence(inspect.getdoc(obj) or "")
            if s and s not in seen:
                seen.add(s)
                _cache.append(s)
    return _cache


def _first_sentence(doc: str) -> str | None:
    para = doc.strip().split("\n\n", 1)[0]
    if ">>>" in para or re.search(r"^\w+\(.*\)", para):  # a doctest or a signature line, not prose
        return None
    text = " ".join(para.split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    text = m.group(1) if m else text
    return text if 6 <= len(text.split()) <= 40 else None
