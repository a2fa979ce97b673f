"""One artifact with dynamic axes, checked at several lengths: min, midpoint and max of every range
(edgec.graph.dynamic), each against ONNX Runtime on the original at that length."""

from __future__ import annotations

import dataclasses

from edgec.graph.dynamic import lengths
from edgec.runtimes.numerics import compare, thresholds


def validate_lengths(backend, artifact, prepared, profile, reference, gates: dict | None, threads: int):
    """Fills artifact.details["numerics_by_length"] (one row per length) and a report note per length. Returns
    `prepared` (its shapes, the max, are the ones the rest of validation uses)."""
    spec = profile.validate_.numerics
    gates = gates or thresholds(spec, artifact.precision)
    runner = backend.runner(artifact, threads)
    rows = []
    for shapes in lengths(prepared.shapes, prepared.ranges):
        at = dataclasses.replace(prepared, shapes=shapes)
        feeds, refs = reference.get(at, profile)
        actual = [runner.run(f) for f in feeds]
        r = compare(refs, actual, runner.name, gates["min_cosine"], gates["max_abs"], gates["min_delta_cosine"],
                    kinds=reference.kinds, noise=reference.noise_of(at, profile))
        where = {n: shapes[n] for n in sorted(prepared.ranges)}
        cos = min((m.cosine for m in r.outputs.values()), default=1.0)
        worst = max((m.max_abs for m in r.outputs.values()), default=0.0)
        rows.append({"shapes": where, "passed": r.passed, "min_cosine": cos, "max_abs": worst,
                     "inputs": reference.inputs_of(at, profile),
                     "outputs": {n: {"cosine": m.cosine, "max_abs": m.max_abs} for n, m in r.outputs.items()},
                     "message": r.message})
        artifact.notes.append(f"numerics at {', '.join(f'{n} {s}' for n, s in where.items())}: "
                              f"{'pass' if r.passed else 'FAIL'}, min cosine {cos:.6f}, max abs {worst:.3g} "
                              f"({runner.name}, the same artifact)")
    artifact.details["numerics_by_length"] = rows
    if profile.validate_.data and all(r["inputs"].startswith("seeded random") for r in rows):
        _no_file_fits(profile.validate_.data, prepared, [r["shapes"] for r in rows])
    return prepared


def _no_file_fits(folder: str, prepared, checked: list[dict]) -> None:
    from edgec.errors import ValidationDataError

    raise ValidationDataError(
        f"validation folder {folder} has no file at any length this build checks ({'; '.join(str(c) for c in checked)}"
        f", the ranged axes of {', '.join(sorted(prepared.ranges))} at min, midpoint and max): the files' shapes are "
        f"outside the range or differ in a fixed axis. Save samples at one of these lengths (pad them to the max), "
        f"or widen the range in --input-shape.")
