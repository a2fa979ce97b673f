"""Validation inputs, so reference and artifact see exactly the same tensors, from the values each input can take.

Random floats are N(0, 1). Other inputs take the values of their domain: the profile's
`inputs: {NAME: {values: [...]}}` or `{range: [lo, hi]}`, else what the graph says:
- an integer input used as Gather indices indexes [0, rows) of the gathered table (token ids, token_type_ids);
- an input used as a mask (Equal/Where/Not, `1 - x`, or named *mask*) is 0/1: `(1 - m) * finfo.min` with m = 3
  overflows to -inf and the reference itself turns NaN;
- a scalar that decides an If or feeds a shape (Reshape/Expand/Range/Tile/ConstantOfShape/Slice/...) has no
  value we can guess (a sample rate of 16000, a length): it must be given, and the error says how.
Other integer inputs take [0, 10), booleans 50/50.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.graph.shapes import dims_of, real_inputs

# ops that pass an input's values through unchanged (for following an input to the op that decides its domain)
PASS = ("Cast", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity", "Expand")
# (op, input index) whose value decides a shape or a branch: a random value there builds another graph
SHAPE_INPUTS = {("If", 0), ("Reshape", 1), ("Expand", 1), ("Tile", 1), ("ConstantOfShape", 0), ("Range", 0),
                ("Range", 1), ("Range", 2), ("Slice", 1), ("Slice", 2), ("Slice", 4), ("TopK", 1), ("Resize", 3),
                ("Loop", 0), ("OneHot", 1), ("Pad", 1)}


@dataclass(frozen=True)
class Domain:
    values: tuple | None = None  # one of these
    low: float | None = None  # or [low, high) for integers, [low, high] for floats
    high: float | None = None
    why: str = ""  # where it came from, for the report

    def describe(self) -> str:
        what = (f"values {list(self.values)}" if self.values is not None else f"range [{self.low:g}, {self.high:g}"
                + (")" if self.why.startswith("indexes") else "]"))
        return f"{what} ({self.why})" if self.why else what


def input_specs(model: onnx.ModelProto, shapes: dict[str, list[int]] | None = None
                ) -> list[tuple[str, np.dtype, list[int]]]:
    """(name, numpy dtype, static shape) of every real input. Shapes must already be fixed, or given in `shapes`
    (a model that keeps dynamic axes, at one concrete length)."""
    specs = []
    for value in real_inputs(model):
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        dims = (shapes or {}).get(value.name) or dims_of(value)
        specs.append((value.name, dtype, [int(d) for d in dims]))
    return specs


def _given(spec) -> Domain | None:
    if spec is None:
        return None
    values, rng = getattr(spec, "values", None), getattr(spec, "range", None)
    if values is not None:
        return Domain(values=tuple(values), why="profile")
    if rng is not None:
        return Domain(low=float(rng[0]), high=float(rng[1]), why="profile")
    return None


def input_domains(model: onnx.ModelProto, given: dict | None = None, only: set[str] | None = None
                  ) -> dict[str, Domain]:
    """Every real input's Domain where one is given or can be read off the graph (none: the default random).
    Raises UsageError for a scalar input that decides a branch or a shape and has no given value. `only`: the
    inputs that will be fed (an input fixed by --input-value is not one of them)."""
    from edgec.errors import UsageError

    given = given or {}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
    inits = {t.name: t for t in model.graph.initializer}
    out: dict[str, Domain] = {}
    for value in real_inputs(model):
        name = value.name
        if only is not None and name not in only:
            continue
        if (d := _given(given.get(name))) is not None:
            out[name] = d
            continue
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        uses = _uses(name, consumers)
        decides = [(n, i) for n, i in uses if (n.op_type, i) in SHAPE_INPUTS]
        if decides:
            n, i = decides[0]
            raise UsageError(
                f"input '{name}' decides {'a branch' if n.op_type == 'If' else 'a shape'} (input {i} of "
                f"{n.op_type} '{n.name or n.output[0]}'), so a random value would check another graph than your "
                f"app runs. If your app always passes one value, fix it with --input-value {name}=VALUE (the "
                f"input becomes a constant and the {n.op_type} folds away); else give the value(s) it takes in the "
                f"profile: `inputs: {{{name}: {{values: [...]}}}}` (e.g. a sample rate of 16000), or real inputs "
                f"with --validation-data DIR.")
        if (d := _gather_domain(name, uses, inits)) is not None and not np.issubdtype(dtype, np.floating):
            out[name] = d
        elif _is_mask(name, uses, inits):
            out[name] = Domain(values=(0, 1), why="used as a mask" if "mask" not in name.lower() else "named *mask*")
    return out


def _uses(name: str, consumers) -> list[tuple[onnx.NodeProto, int]]:
    """(node, input index) of every op that reads `name`'s values, through value-preserving ops."""
    seen, todo, out = set(), [name], []
    while todo:
        t = todo.pop()
        for node, i in consumers.get(t, []):
            if node.op_type in PASS and i == 0:
                if node.output[0] not in seen:
                    seen.add(node.output[0])
                    todo.append(node.output[0])
            else:
                out.append((node, i))
    return out


def _gather_domain(name: str, uses, inits) -> Domain | None:
    rows = []
    for node, i in uses:
        if node.op_type == "Gather" and i == 1 and node.input[0] in inits:
            table = inits[node.input[0]]
            axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
            rows.append((int(table.dims[axis]), node.name or node.output[0]))
    if not rows:
        return None
    n, where = min(rows)
    return Domain(low=0, high=n, why=f"indexes the {n}-row table of Gather '{where}'")


def _is_mask(name: str, uses, inits) -> bool:
    if "mask" in name.lower():
        return True
    for node, i in uses:
        if node.op_type in ("Where", "Not", "And", "Or") and (node.op_type != "Where" or i == 0):
            return True
        if node.op_type == "Equal":
            return True
        if node.op_type == "Sub" and i == 1 and node.input[0] in inits:  # 1 - x
            c = numpy_helper.to_array(inits[node.input[0]])
            if c.size == 1 and float(c.ravel()[0]) == 1.0:
                return True
    return False


def random_inputs(specs, seed: int, samples: int, domains: dict[str, Domain] | None = None) -> list[dict[str, np.ndarray]]:
    """`samples` feeds: each input from its Domain where it has one; else floats ~ N(0, 1), integers in [0, 10),
    bools 50/50."""
    rng = np.random.default_rng(seed)
    return [random_feed(specs, rng, domains) for _ in range(samples)]


def random_feed(specs, rng: np.random.Generator, domains: dict[str, Domain] | None = None) -> dict[str, np.ndarray]:
    """One feed drawn from `rng` (random_inputs' rule per input)."""
    domains = domains or {}
    feed = {}
    for name, dtype, shape in specs:
        d = domains.get(name)
        if d is not None and d.values is not None:
            feed[name] = rng.choice(np.asarray(d.values), size=shape).astype(dtype)
        elif d is not None and np.issubdtype(dtype, np.floating):
            feed[name] = rng.uniform(d.low, d.high, size=shape).astype(dtype)
        elif d is not None:
            feed[name] = rng.integers(int(d.low), int(d.high), size=shape).astype(dtype)
        elif np.issubdtype(dtype, np.floating):
            feed[name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feed[name] = np.asarray(rng.random(shape) < 0.5)  # a 0-d compare is a numpy scalar
        else:
            feed[name] = rng.integers(0, 10, size=shape).astype(dtype)
    return feed


def describe_inputs(specs, domains: dict[str, Domain], source: str = "") -> str:
    """One line for the report: what the validation inputs were."""
    parts = []
    for name, dtype, shape in specs:
        d = domains.get(name)
        default = "N(0, 1)" if np.issubdtype(dtype, np.floating) else "50/50" if dtype == np.bool_ else "[0, 10)"
        parts.append(f"'{name}' {np.dtype(dtype).name}{list(shape)}: {d.describe() if d else default}")
    return (source + ": " if source else "") + "; ".join(parts)
