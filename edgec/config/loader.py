"""Find and load targets and profiles: built-in ones by name, user files by path.

Errors name the file, the line and the key, and say what to do.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from edgec.config.models import Profile, Target
from edgec.config.yaml_lines import line_of, load_with_lines
from edgec.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _builtin(kind: str) -> Path:
    """An installed wheel carries the YAML inside the package (setup.py copies it); a checkout or an editable
    install reads the repository's top-level folder."""
    packaged = PACKAGE_DIR / kind
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / kind


BUILTIN_TARGETS = _builtin("targets")
BUILTIN_PROFILES = _builtin("profiles")

M = TypeVar("M", bound=BaseModel)


def _alias_of(model: type[BaseModel], field: str) -> str:
    info = model.model_fields.get(field)
    return info.alias if info is not None and info.alias else field


def _explain(err: dict) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    return err["msg"].lower()


def parse_model(model: type[M], path: Path) -> M:
    data, lines = load_with_lines(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of keys (like `name: ...`), found {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            # pydantic reports the python field name; YAML has the alias (validate_ -> validate)
            if loc and loc[0] == "validate_":
                loc = ("validate",) + loc[1:]
            line = line_of(lines, loc)
            key = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(f"{path}:{line}: key '{key}': {_explain(err)}")
        raise ConfigError(
            "; ".join(problems) + ". Fix the key at that line (see the profile format in the README)."
        ) from None


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def builtin_target_names() -> list[str]:
    return _names(BUILTIN_TARGETS)


def builtin_profile_names() -> list[str]:
    return _names(BUILTIN_PROFILES)


def _resolve(name_or_path: str, folder: Path, what: str, names: list[str]) -> Path:
    as_path = Path(name_or_path)
    if as_path.suffix in (".yaml", ".yml") or "/" in name_or_path or as_path.exists():
        if not as_path.is_file():
            raise ConfigError(f"{what} file '{name_or_path}' does not exist. Built-in {what}s: {', '.join(names)}.")
        return as_path
    builtin = folder / f"{name_or_path}.yaml"
    if not builtin.is_file():
        raise ConfigError(
            f"Unknown {what} '{name_or_path}'. Built-in {what}s: {', '.join(names)}; "
            f"or pass the path of your own YAML file."
        )
    return builtin


def _stamp(path: Path) -> tuple[int, int]:
    # part of the parse cache key, so a YAML file edited while the process runs is read again
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=64)
def _load_target_file(path: Path, stamp: tuple[int, int]) -> Target:
    return parse_model(Target, path)


@lru_cache(maxsize=64)
def _load_profile_file(path: Path, stamp: tuple[int, int]) -> Profile:
    return _anchor_paths(parse_model(Profile, path), path.parent)


def _anchor_paths(profile: Profile, folder: Path) -> Profile:
    """Relative file paths inside a profile mean 'next to this YAML file', not 'wherever edgec was started'."""

    def anchored(value: str | None) -> str | None:
        if value is None or value == "random" or Path(value).is_absolute():
            return value
        return str(folder / value)

    q, cal = profile.quantize, profile.quantize.calibration
    if q.target is not None and q.target.held_out is not None:
        q = q.model_copy(update={"target": q.target.model_copy(update={"held_out": anchored(q.target.held_out)})})
    lat = profile.validate_.latency
    host = lat.host_profile
    if host is not None and (host.endswith((".yaml", ".yml")) or "/" in host):
        host = anchored(host)
    return profile.model_copy(update={
        "quantize": q.model_copy(update={"calibration": cal.model_copy(update={"source": anchored(cal.source)})}),
        "coreml": profile.coreml.model_copy(update={"labels": anchored(profile.coreml.labels)}),
        "validate_": profile.validate_.model_copy(update={"latency": lat.model_copy(update={"host_profile": host}),
                                                          "data": anchored(profile.validate_.data)}),
    })


def load_target(name_or_path: str) -> Target:
    path = _resolve(name_or_path, BUILTIN_TARGETS, "target", builtin_target_names()).resolve()
    return _load_target_file(path, _stamp(path))


def load_profile(name_or_path: str) -> Profile:
    path = _resolve(name_or_path, BUILTIN_PROFILES, "profile", builtin_profile_names()).resolve()
    profile = _load_profile_file(path, _stamp(path))
    if profile.target not in builtin_target_names() and not Path(profile.target).is_file():
        _, lines = load_with_lines(path)
        raise ConfigError(
            f"{path}:{line_of(lines, ('target',))}: key 'target': unknown target '{profile.target}'. "
            f"Built-in targets: {', '.join(builtin_target_names())}."
        )
    return profile


def all_targets() -> list[Target]:
    return [load_target(n) for n in builtin_target_names()]


def all_profiles() -> list[Profile]:
    return [load_profile(n) for n in builtin_profile_names()]
