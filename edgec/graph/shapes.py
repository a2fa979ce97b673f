"""Fix the model's dynamic input dims from the profile's `inputs` and `--input-shape` flags."""

from __future__ import annotations

import onnx

from edgec.errors import ShapeError, UsageError


def real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (old IR versions list weights as inputs too)."""
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def dims_of(value: onnx.ValueInfoProto) -> list[int | str]:
    """Each dim as an int, or its symbolic name ('?' when it has none)."""
    out: list[int | str] = []
    for d in value.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:  # paddle2onnx and others write -1 for "dynamic"
            out.append(d.dim_value)
        else:
            out.append(d.dim_param or "?")
    return out


# (op, input index) that read only a tensor's dtype or shape, never its elements: an empty tensor there is fine
_METADATA_SLOTS = {("CastLike", 1), ("Shape", 0), ("Size", 0)}


def _metadata_only(graph: onnx.GraphProto, name: str) -> bool:
    """Every use of `name` reads only its dtype or shape (CastLike's `like`): an empty input there leaves the
    model's outputs full, so there is something to validate. A use in a subgraph counts as a data use."""
    if any(o.name == name for o in graph.output):
        return False
    uses = [(n.op_type, i) for n in graph.node if n.domain in ("", "ai.onnx") for i, x in enumerate(n.input)
            if x == name]
    subgraph = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                   for n in graph.node for a in n.attribute)
    return bool(uses) and not subgraph and all(u in _METADATA_SLOTS for u in uses)


def parse_input_shape_flags(flags: list[str]) -> dict[str, list]:
    """`name=1,3,224,224` -> {"name": [1, 3, 224, 224]} (the name may itself contain '=' only before the last one);
    `ids=1,1..512` -> {"ids": [1, (1, 512)]}: a range keeps that axis dynamic where the target can (graph.dynamic)."""
    from edgec.graph.dynamic import parse_dim

    shapes: dict[str, list] = {}
    for flag in flags:
        name, sep, dims = flag.rpartition("=")
        try:
            values = [parse_dim(d) for d in dims.split(",")] if sep and name else None
        except ValueError:
            values = None
        if not values or any(isinstance(v, int) and v < 0 for v in values):
            raise UsageError(
                f"--input-shape '{flag}' is not of the form NAME=D0,D1,... with positive integers or MIN..MAX "
                f"ranges (e.g. --input-shape images=1,3,224,224, or input_ids=1,1..512 for a sequence axis that "
                f"stays dynamic; 0 only for a deliberately empty dim)."
            )
        shapes[name] = values
    return shapes


def fix_input_shapes(model: onnx.ModelProto, shapes: dict[str, list[int]], model_path: str = "model",
                     keep: dict[str, dict[int, tuple[int, int]]] | None = None, symbolic: bool = False
                     ) -> dict[str, list[int]]:
    """Set every input's dims (in place). Returns the final static shape of every real input.

    Explicit shapes must agree with the model's static dims; a dynamic dim left unresolved is an error
    naming the input and the flag to use. `keep`: input -> axes given as a range, which must be dynamic in the
    model; with `symbolic` they stay dynamic (dim_param) and their size in `shapes` is only the one returned.
    """
    inputs = real_inputs(model)
    names = [i.name for i in inputs]
    unknown = [n for n in shapes if n not in names]
    if unknown:
        raise ShapeError(
            f"{model_path}: shape given for unknown input(s) {', '.join(map(repr, unknown))}. "
            f"The model's inputs are: {', '.join(map(repr, names))}."
        )
    final: dict[str, list[int]] = {}
    for value in inputs:
        dims = dims_of(value)
        given = shapes.get(value.name)
        if given is not None:
            if len(given) != len(dims):
                raise ShapeError(
                    f"{model_path}: input '{value.name}' has rank {len(dims)} ({dims}) but the given shape "
                    f"{given} has rank {len(given)}."
                )
            for i, (d, g) in enumerate(zip(dims, given)):
                if isinstance(d, int) and i in (keep or {}).get(value.name, {}):
                    lo, hi = keep[value.name][i]
                    raise ShapeError(
                        f"{model_path}: input '{value.name}' dim {i} is fixed to {d} in the model, so it cannot take "
                        f"the range {lo}..{hi}: every size is baked into the graph at export. Re-export the model "
                        f"with that axis dynamic (torch.onnx.export(..., dynamic_axes={{'{value.name}': {{{i}: "
                        f"'seq'}}}})), or give the size {d}.")
                if isinstance(d, int) and d != g:
                    raise ShapeError(
                        f"{model_path}: input '{value.name}' dim {i} is fixed to {d} in the model, but the "
                        f"given shape says {g} ({given})."
                    )
            dims = list(given)
        dynamic = [i for i, d in enumerate(dims) if not isinstance(d, int)]
        if dynamic:
            example = ",".join(str(d) if isinstance(d, int) else "N" for d in dims)
            raise ShapeError(
                f"{model_path}: input '{value.name}' has dynamic dim(s) {[dims[i] for i in dynamic]} in "
                f"shape {dims}. Fix them with `--input-shape {value.name}={example}` (N = the size you deploy) "
                f"or under `inputs: {{{value.name}: {{shape: [...]}}}}` in the profile; a range MIN..MAX "
                f"(`--input-shape {value.name}={example.replace('N', '1..512', 1)}`, in a profile `[1, 512]` on the "
                f"axis) keeps the axis dynamic where the target can."
            )
        if 0 in dims and given is None and not _metadata_only(model.graph, value.name):
            # an empty tensor builds, and its numerics "pass" on nothing: only when the user says so
            raise ShapeError(
                f"{model_path}: input '{value.name}' has a zero-sized dim (shape {dims}), so every tensor after it "
                f"is empty and nothing can be validated. Fix the dim in the model, or if you mean an empty input "
                f"say so with `--input-shape {value.name}={','.join(map(str, dims))}`."
            )
        shape = value.type.tensor_type.shape
        kept = (keep or {}).get(value.name, {}) if symbolic else {}
        for axis, (d, size) in enumerate(zip(shape.dim, dims)):
            if axis in kept:
                name = d.dim_param or f"{value.name}_{axis}"
                d.Clear()
                d.dim_param = name
                continue
            d.Clear()
            d.dim_value = int(size)
        final[value.name] = [int(x) for x in dims]
    return final
