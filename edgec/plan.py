"""Which (target, profile) pairs a build makes, from --target / --profile."""

from __future__ import annotations

from edgec.config.loader import all_targets, load_profile, load_target
from edgec.config.models import Profile, Target
from edgec.errors import UsageError

DEFAULT_TARGET = "ort-mobile"


def plan_builds(target: str | None, profile: str | None) -> list[tuple[Target, Profile]]:
    """--profile alone: its own target. --target alone: the target's default profile. Both: this profile's
    hardware and settings lowered for this target. `--target all`: every built-in target. Neither: ort-mobile."""
    if target == "all":
        targets = all_targets()
    elif target:
        targets = [load_target(target)]
    elif profile:
        p = load_profile(profile)
        return [(load_target(p.target), p)]
    else:
        targets = [load_target(DEFAULT_TARGET)]
    pairs = []
    for t in targets:
        p = load_profile(profile) if profile else load_profile(t.default_profile)
        pairs.append((t, p))
    if not pairs:
        raise UsageError("No targets to build.")
    return pairs
