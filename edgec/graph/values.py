"""Fixed input values: `--input-value sr=16000` / profile `inputs: {sr: {value: 16000}}` turn an input into a
constant before simplification, so the graph folds around it (an If on the sample rate is inlined, a Shape/Equal
chain becomes a constant) and the artifact no longer has that input. Validation feeds the value to the original."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import ShapeError, UsageError
from edgec.graph.shapes import dims_of, real_inputs

MAX_ELEMENTS = 4096  # "scalars and small lists": a bigger constant belongs in the model, not on a command line


def parse_input_value_flags(flags: list[str]) -> dict[str, list[float | int] | float | int]:
    """`sr=16000` -> {"sr": 16000}; `mask=1,1,0` -> {"mask": [1, 1, 0]} (numbers; dtype comes from the model)."""
    values: dict[str, list[float | int] | float | int] = {}
    for flag in flags:
        name, sep, text = flag.partition("=")
        try:
            items = [_number(t) for t in text.split(",")] if sep and name and text else None
        except ValueError:
            items = None
        if items is None:
            raise UsageError(f"--input-value '{flag}' is not of the form NAME=VALUE or NAME=V0,V1,... with numbers "
                             f"(e.g. --input-value sr=16000).")
        values[name] = items[0] if len(items) == 1 and "," not in text else items
    return values


def _number(text: str) -> float | int:
    text = text.strip()
    if text.lower() in ("true", "false"):
        return int(text.lower() == "true")
    try:
        return int(text)
    except ValueError:
        return float(text)


def merged_values(profile_inputs: dict, cli_values: dict) -> dict:
    """The profile's `inputs.<name>.value`s, overridden by --input-value."""
    values = {name: spec.value for name, spec in profile_inputs.items() if getattr(spec, "value", None) is not None}
    values.update(cli_values)
    return values


def fix_input_values(model: onnx.ModelProto, values: dict, model_path: str = "model") -> dict[str, np.ndarray]:
    """Replace each named input by an initializer holding its value (in place), with the model's dtype and
    shape. Returns {name: array} (what validation feeds to the original model)."""
    if not values:
        return {}
    inputs = {v.name: v for v in real_inputs(model)}
    unknown = [n for n in values if n not in inputs]
    if unknown:
        raise ShapeError(f"{model_path}: --input-value / inputs.<name>.value for unknown input(s) "
                         f"{', '.join(map(repr, unknown))}. The model's inputs are: {', '.join(map(repr, inputs))}.")
    fixed: dict[str, np.ndarray] = {}
    for name, value in values.items():
        info = inputs[name]
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type))
        flat = np.atleast_1d(np.asarray(value))
        if flat.size > MAX_ELEMENTS:
            raise UsageError(f"input value for '{name}' has {flat.size} elements; at most {MAX_ELEMENTS} can be "
                             f"fixed (use an input, or put the constant into the model).")
        if np.issubdtype(dtype, np.integer) and not np.all(np.mod(flat, 1) == 0):
            raise UsageError(f"input '{name}' is {dtype} but the given value {value} is not an integer.")
        dims = dims_of(info) if info.type.tensor_type.HasField("shape") else [len(flat)]
        shape = _shape_for(name, dims, flat.size, model_path)
        array = flat.astype(dtype).reshape(shape)
        fixed[name] = array
    keep = [i for i in model.graph.input if i.name not in fixed]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    model.graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in fixed.items())
    return fixed


def _shape_for(name: str, dims: list, size: int, model_path: str) -> list[int]:
    """The value's shape: the model's static dims; one dynamic dim takes whatever size the list has."""
    known = int(np.prod([d for d in dims if isinstance(d, int)])) if dims else 1
    dynamic = [i for i, d in enumerate(dims) if not isinstance(d, int)]
    if len(dynamic) > 1 or (not dynamic and known != size) or (dynamic and size % max(known, 1)):
        raise ShapeError(f"{model_path}: input '{name}' has shape {dims} but the fixed value has {size} "
                         f"element(s); give {known if not dynamic else 'a multiple of ' + str(known)} value(s).")
    return [size // max(known, 1) if not isinstance(d, int) else d for d in dims]


def describe(values: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{n}={a.tolist()} ({a.dtype})" for n, a in values.items())
