"""`edgec matrix`: the (target, profile) pairs of a build as a GitHub Actions `strategy.matrix` include-list."""

from __future__ import annotations

import re

from edgec.config.loader import builtin_target_names, load_profile, load_target
from edgec.errors import UsageError


def _split(csv: str | None) -> list[str]:
    return [x.strip() for x in (csv or "").split(",") if x.strip()]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def matrix(profiles: str | None = None, targets: str | None = None) -> dict:
    """--profiles alone: each profile with its own target. --targets alone: each target's default profile.
    Both: every target x profile pair. Neither: every built-in target with its default profile.
    Each entry names the job's `edgec build` arguments and a distinct output folder for `edgec merge`."""
    prof_names, target_names = _split(profiles), _split(targets)
    if not prof_names and not target_names:
        target_names = builtin_target_names()
    pairs: list[tuple[str, str]] = []
    if prof_names and not target_names:
        pairs = [(load_profile(p).target, p) for p in prof_names]
    elif target_names and not prof_names:
        pairs = [(t, load_target(t).default_profile) for t in target_names]
    else:
        for t in target_names:
            load_target(t)
            pairs += [(t, p) for p in prof_names if load_profile(p)]
    seen, include = set(), []
    for t, p in pairs:
        if (t, p) in seen:
            continue
        seen.add((t, p))
        include.append({"target": t, "profile": p, "name": f"{t}-{_slug(p.split('/')[-1].removesuffix('.yaml'))}",
                        "out": f"dist-{_slug(t)}-{_slug(p.split('/')[-1].removesuffix('.yaml'))}"})
    if not include:
        raise UsageError("edgec matrix: no (target, profile) pairs; give --profiles and/or --targets.")
    return {"include": include}
