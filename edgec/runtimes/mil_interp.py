"""Run a saved CoreML ML Program (.mlpackage) on any machine with numpy.

CoreML has no runtime outside Apple platforms. We reload the SAVED package through coremltools'
milproto loader (so validation covers the real file, after coremltools' own graph passes) and
execute the main function op by op with the numpy implementations in `mil_ops`. Every result is
converted to the dtype the program declares for it, so an fp16 program rounds, saturates and
overflows to inf where the device would.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgec.errors import LoweringError, ShapeError
from edgec.runtimes.ct_quiet import quiet_native_proxy_warnings

from .mil_ops import CHECKS, registry

quiet_native_proxy_warnings()  # this module imports coremltools lazily; keep its Linux noise out

# ops that carry nested blocks; the interpreter runs one flat block
_CONTROL_FLOW = {"cond", "while_loop", "make_list", "list_read", "list_write", "list_gather", "list_scatter",
                 "list_length"}


@dataclass
class _Step:
    op_type: str
    op_name: str
    fn: object
    inputs: dict  # input name -> var name, or list of var names for tuple inputs
    outputs: list[str]
    dtypes: list  # numpy dtype per output
    shapes: list  # static shape per output (None where any dim is symbolic)


def _np_dtype(var):
    """numpy dtype of a tensor/scalar var; None for a string or dictionary (a classifier's outputs)."""
    from coremltools.converters.mil.mil import types

    if types.is_str(var.sym_type) or types.is_dict(var.sym_type):
        return None
    return np.dtype(types.nptype_from_builtin(var.dtype))


def _static_shape(var):
    shape = getattr(var, "shape", None)
    if shape is None or not all(isinstance(d, (int, np.integer)) for d in shape):
        return None
    return tuple(int(d) for d in shape)


def _const_value(var):
    v = var.val
    return v if isinstance(v, str) else np.asarray(v)


@contextlib.contextmanager
def _unclashing_builder_names():
    """The milproto loader makes a `const` for each inline value (e.g. classify's class list) named from
    the Builder's counter, "const_0", ..., which can clash with a saved op's name (the interpreter keys
    values by name). Start the counter far away while loading."""
    from collections import defaultdict

    from coremltools.converters.mil.mil import Builder as mb

    saved = mb.name_count
    mb.name_count = defaultdict(lambda: 1_000_000_000)
    try:
        yield
    finally:
        mb.name_count = saved


def load_program(package_path: Path):
    """The MIL Program of a saved .mlpackage and the name of its default function."""
    path = Path(package_path)
    if not path.exists():
        raise LoweringError(f"CoreML package {path} does not exist.")
    try:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto import load as milproto

        # coremltools logs its pass pipelines at INFO; quiet while loading
        logging.getLogger("coremltools").setLevel(logging.WARNING)
        model = ct.models.MLModel(str(path), skip_model_load=True)
        spec = model.get_spec()
        if spec.WhichOneof("Type") != "mlProgram":
            raise LoweringError(f"{path} is not an ML Program (it holds a '{spec.WhichOneof('Type')}' model).")
        with _unclashing_builder_names():
            program = milproto.load(spec, spec.specificationVersion, file_weights_dir=model.weights_dir or "")
    except LoweringError:
        raise
    except Exception as e:  # protobuf / coremltools raise assorted types for damaged packages
        raise LoweringError(f"coremltools cannot load the ML Program in {path}: {type(e).__name__}: {e}") from None
    function = spec.description.defaultFunctionName or "main"
    if function not in program.functions:
        raise LoweringError(f"{path} has no function '{function}' (functions: {', '.join(program.functions)}).")
    return program, function


class MilInterpreterRunner:
    """`.run(feeds)` executes the package's default function; names are the CoreML function's own."""

    name = "mil-interpreter"
    # a numpy op-by-op reference: its timings say nothing about CoreML on a device (use latency mode estimate)
    latency_meaningful = False

    def __init__(self, package_path: Path):
        self.path = Path(package_path)
        program, fname = load_program(self.path)
        func = program.functions[fname]
        self.input_specs = {n: (_np_dtype(v), _static_shape(v)) for n, v in func.inputs.items()}
        self.output_names = [v.name for v in func.outputs]
        ops = registry()
        self._consts: dict[str, object] = {}
        self._steps: list[_Step] = []
        problems: dict[str, set[str]] = {}
        for op in func.operations:
            if op.op_type == "const":
                self._consts[op.outputs[0].name] = _const_value(op.outputs[0])
                continue
            fn = ops.get(op.op_type)
            if fn is None or op.op_type in _CONTROL_FLOW:
                problems.setdefault(op.op_type, set()).add("no numpy implementation")
                continue
            why = self._why_unsupported(op, fn)
            if why:
                problems.setdefault(op.op_type, set()).add(why)
                continue
            inputs = {k: ([x.name for x in v] if isinstance(v, (list, tuple)) else v.name) for k, v in op.inputs.items()}
            self._steps.append(_Step(op.op_type, op.name, fn, inputs, [o.name for o in op.outputs],
                                     [_np_dtype(o) for o in op.outputs], [_static_shape(o) for o in op.outputs]))
        if problems:
            listed = "; ".join(f"{t} ({', '.join(sorted(w))})" for t, w in sorted(problems.items()))
            raise LoweringError(
                f"The MIL interpreter cannot run {self.path}: {len(problems)} op type(s) unsupported: {listed}. "
                f"Validate this model on a Mac (CoreML runtime) or change the lowering to avoid these ops."
            )
        # op type -> count, including constexpr ops folded at load time (for reports and tests)
        self.op_types = dict(sorted(Counter(s.op_type for s in self._steps).items()))
        self._fold_constexpr()
        self._last_use = self._last_uses()

    @staticmethod
    def _why_unsupported(op, fn) -> str | None:
        try:
            inspect.signature(fn).bind(**{k: None for k in op.inputs})
        except TypeError as e:
            return f"inputs {sorted(op.inputs)} do not match the implementation ({e})"
        check = CHECKS.get(op.op_type)
        if check is None:
            return None
        consts = {}
        for k, v in op.inputs.items():
            if not isinstance(v, (list, tuple)) and v.val is not None:
                consts[k] = v.val if isinstance(v.val, str) else np.asarray(v.val).item() if np.size(v.val) == 1 else v.val
        return check(consts)

    def _fold_constexpr(self):
        """constexpr_* ops decompress weights at load time on device too: do it once here."""
        rest = []
        for step in self._steps:
            names = [n for v in step.inputs.values() for n in (v if isinstance(v, list) else [v])]
            if step.op_type.startswith("constexpr_") and all(n in self._consts for n in names):
                for name, value in zip(step.outputs, self._execute(step, self._consts)):
                    self._consts[name] = value
            else:
                rest.append(step)
        self._steps = rest

    def _last_uses(self) -> dict[str, int]:
        """Index of the last step reading each value, so intermediates are freed early (ResNet-size nets)."""
        last = {}
        for i, step in enumerate(self._steps):
            for v in step.inputs.values():
                for n in v if isinstance(v, list) else [v]:
                    last[n] = i
        return last

    def _execute(self, step: _Step, env: dict) -> list[np.ndarray]:
        kwargs = {k: ([env[n] for n in v] if isinstance(v, list) else env[v]) for k, v in step.inputs.items()}
        try:
            result = step.fn(**kwargs)
        except Exception as e:
            raise LoweringError(
                f"MIL interpreter failed in {step.op_type} op '{step.op_name}' of {self.path}: {type(e).__name__}: {e}"
            ) from e
        results = list(result) if isinstance(result, tuple) else [result]
        if len(results) != len(step.outputs):
            raise LoweringError(f"MIL interpreter: {step.op_type} op '{step.op_name}' produced {len(results)} outputs, "
                                f"the program declares {len(step.outputs)}.")
        out = []
        for name, value, dtype, shape in zip(step.outputs, results, step.dtypes, step.shapes):
            if dtype is None:  # str / dict feature values pass through as python objects
                out.append(value)
                continue
            value = np.asarray(value)
            if value.dtype != dtype:
                value = value.astype(dtype)
            if shape is not None and value.shape != shape:
                # the program's own type inference disagrees with our op: an interpreter bug, never pass it on
                raise LoweringError(f"MIL interpreter: {step.op_type} op '{step.op_name}' gave shape {value.shape} "
                                    f"for '{name}', the program declares {shape}.")
            out.append(value)
        return out

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = sorted(set(self.input_specs) - set(feeds))
        unknown = sorted(set(feeds) - set(self.input_specs))
        if missing or unknown:
            raise LoweringError(f"Inputs of {self.path} are {sorted(self.input_specs)}; "
                                f"missing {missing}, unknown {unknown}.")
        env = dict(self._consts)
        for name, (dtype, shape) in self.input_specs.items():
            value = np.asarray(feeds[name])
            if shape is not None and value.shape != shape:
                raise ShapeError(f"Input '{name}' of {self.path} has shape {value.shape}; the program expects {shape}.")
            env[name] = value.astype(dtype, copy=False)
        keep = set(self.output_names) | set(self._consts)
        with np.errstate(all="ignore"):  # fp16 overflow to inf is the point, not a warning
            for i, step in enumerate(self._steps):
                for name, value in zip(step.outputs, self._execute(step, env)):
                    env[name] = value
                for v in step.inputs.values():
                    for n in v if isinstance(v, list) else [v]:
                        if self._last_use.get(n) == i and n not in keep:
                            env.pop(n, None)
        outs = {}
        for name in self.output_names:
            value = env[name]
            outs[name] = value.astype(np.float32) if getattr(value, "dtype", None) == np.float16 else value
        return outs
