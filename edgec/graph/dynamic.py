"""Input axes given as a range ([min, max] in a profile, `A..B` in --input-shape): which sizes the fixed-shape passes
and validation use, and which axes stay dynamic in the artifact.

The fixed-shape passes (fold, onnxsim, the backends' lowerings) see every ranged axis at its MAX: a constant that
onnxsim folds from the length (a position-embedding slice, a mask) then holds the values of every shorter length
too, so a backend can cut it at run time (edgec.graph.generalize). Validation runs the one artifact at min, the
midpoint and max.
"""

from __future__ import annotations

Dim = int | tuple[int, int]  # a size, or an inclusive (min, max) range
Ranges = dict[str, dict[int, tuple[int, int]]]  # input -> axis -> (min, max)


def parse_dim(token: str) -> Dim:
    """'16' -> 16, '1..512' -> (1, 512). ValueError when malformed."""
    if ".." in token:
        lo, hi = token.split("..", 1)
        return check_range(int(lo), int(hi))
    return int(token)


def check_range(lo: int, hi: int) -> tuple[int, int]:
    if lo < 1 or hi < lo:
        raise ValueError(f"range {lo}..{hi} needs 1 <= min <= max")
    return lo, hi


def split(shapes: dict[str, list]) -> tuple[dict[str, list[int]], Ranges]:
    """(shapes with every range at its max, the ranges by input and axis)."""
    fixed: dict[str, list[int]] = {}
    ranges: Ranges = {}
    for name, dims in shapes.items():
        out = []
        for axis, d in enumerate(dims):
            if isinstance(d, (tuple, list)):
                lo, hi = check_range(int(d[0]), int(d[1]))
                ranges.setdefault(name, {})[axis] = (lo, hi)
                out.append(hi)
            else:
                out.append(int(d))
        fixed[name] = out
    return fixed, ranges


def lengths(shapes: dict[str, list[int]], ranges: Ranges) -> list[dict[str, list[int]]]:
    """The concrete shape sets validation runs at: every range at its min, midpoint and max (duplicates dropped)."""
    out: list[dict[str, list[int]]] = []
    for pick in (0, 1, 2) if ranges else ():
        if (s := at(shapes, ranges, pick)) not in out:
            out.append(s)
    return out


def at(shapes: dict[str, list[int]], ranges: Ranges, pick: int) -> dict[str, list[int]]:
    """The concrete shapes with every ranged axis at its min (0), midpoint (1) or max (2)."""
    out = {k: list(v) for k, v in shapes.items()}
    for name, axes in ranges.items():
        for axis, (lo, hi) in axes.items():
            out[name][axis] = (lo, (lo + hi) // 2, hi)[pick]
    return out


def alternate(shapes: dict[str, list[int]], ranges: Ranges) -> dict[str, list[int]] | None:
    """A second concrete shape set (every range at another size than its max) to tell which folded constants depend
    on the length; None when no range has two sizes."""
    if not any(lo < hi for axes in ranges.values() for lo, hi in axes.values()):
        return None
    out = {k: list(v) for k, v in shapes.items()}
    for name, axes in ranges.items():
        for axis, (lo, hi) in axes.items():
            # not 1 unless it must be: a size of 1 broadcasts, and onnxsim may fold it differently
            out[name][axis] = max(lo, min(hi - 1, max(2, (lo + hi) // 2)))
    return out


def describe(ranges: Ranges) -> str:
    return ", ".join(f"'{n}' axis {a} in [{lo}, {hi}]" for n, axes in sorted(ranges.items())
                     for a, (lo, hi) in sorted(axes.items()))


RANGES_KEY = "edgec.dynamic_axes"  # metadata of a graph generalized to every length (graph.generalize)


def model_ranges(model) -> dict[str, dict[int, tuple[int, int, str]]]:
    """The ranges a prepared graph was generalized for: input -> axis -> (min, max, the model's dim name); {}."""
    import json

    raw = next((p.value for p in model.metadata_props if p.key == RANGES_KEY), None)
    if raw is None:
        return {}
    return {n: {int(a): (int(r[0]), int(r[1]), str(r[2])) for a, r in axes.items()} for n, axes in json.loads(raw).items()}
