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
from collections import ChainMap, Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgec.errors import LoweringError, ShapeError
from edgec.runtimes.ct_quiet import quiet_native_proxy_warnings

from .mil_ops import RULES, registry

quiet_native_proxy_warnings()  # this module imports coremltools lazily; keep its Linux noise out

# ops the interpreter has no implementation of (list values); cond and while_loop run their blocks (_Block)
_CONTROL_FLOW = {"make_list", "list_read", "list_write", "list_gather", "list_scatter", "list_length"}
_BLOCK_OPS = {"cond", "while_loop"}


@dataclass
class _Step:
    op_type: str
    op_name: str
    fn: object
    inputs: dict  # input name -> var name, or list of var names for tuple inputs
    outputs: list[str]
    dtypes: list  # numpy dtype per output
    shapes: list  # static shape per output (None where any dim is symbolic)
    blocks: list = None  # cond / while_loop: their _Blocks; inputs["_outer"] lists the outer vars they read


@dataclass
class _Block:
    """A nested block: its own input var names (a while_loop's loop vars), steps and output var names."""

    inputs: list[str]
    steps: list
    outputs: list[str]


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


_MAX_ITERATIONS = 1_000_000  # a while_loop that never stops is an error, not a hang


def _outer_reads(blocks: list[_Block]) -> set[str]:
    """Names the blocks' steps read that no step of theirs (or block input) defines: the enclosing block's."""
    reads: set[str] = set()
    for b in blocks:
        local = set(b.inputs) | {o for s in b.steps for o in s.outputs}
        for s in b.steps:
            for v in s.inputs.values():
                reads.update(n for n in (v if isinstance(v, list) else [v]) if n not in local)
        reads.update(n for n in b.outputs if n not in local)
    return reads


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
        self._ops = registry()
        self._consts: dict[str, object] = {}
        problems: dict[str, set[str]] = {}
        self._steps = self._compile(func.operations, problems)
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

    def _compile(self, operations, problems: dict) -> list[_Step]:
        """Steps of one block (consts go to self._consts; nested blocks are compiled into their step)."""
        steps = []
        for op in operations:
            if op.op_type == "const":
                self._consts[op.outputs[0].name] = _const_value(op.outputs[0])
                continue
            blocks = None
            if op.op_type in _BLOCK_OPS:
                fn = None
                blocks = [_Block([v.name for v in b.inputs], self._compile(b.operations, problems),
                                 [v.name for v in b.outputs]) for b in op.blocks]
            else:
                fn = self._ops.get(op.op_type)
                if fn is None or op.op_type in _CONTROL_FLOW:
                    problems.setdefault(op.op_type, set()).add("no numpy implementation")
                    continue
                why = self._why_unsupported(op, fn)
                if why:
                    problems.setdefault(op.op_type, set()).add(why)
                    continue
            inputs = {k: ([x.name for x in v] if isinstance(v, (list, tuple)) else v.name) for k, v in op.inputs.items()}
            if blocks:
                inputs["_outer"] = sorted(_outer_reads(blocks))
            steps.append(_Step(op.op_type, op.name, fn, inputs, [o.name for o in op.outputs],
                               [_np_dtype(o) for o in op.outputs], [_static_shape(o) for o in op.outputs], blocks))
        return steps

    def _run_block(self, block: _Block, env: dict, values: list) -> list:
        """Run a nested block in a child scope (it reads the enclosing values; its own stay inside)."""
        scope = ChainMap(dict(zip(block.inputs, values)), env)
        for step in block.steps:
            for name, value in zip(step.outputs, self._execute(step, scope)):
                scope[name] = value
        return [scope[n] for n in block.outputs]

    def _control(self, step: _Step, env: dict) -> list:
        if step.op_type == "cond":
            pred = bool(np.asarray(env[step.inputs["pred"]]).reshape(-1)[0])
            return self._run_block(step.blocks[0] if pred else step.blocks[1], env, [])
        cond, body = step.blocks  # while_loop: loop_vars through cond/body until cond is false
        values = [env[n] for n in step.inputs["loop_vars"]]
        for _ in range(_MAX_ITERATIONS):
            if not bool(np.asarray(self._run_block(cond, env, values)[0]).reshape(-1)[0]):
                return values
            values = self._run_block(body, env, values)
        raise LoweringError(f"MIL interpreter: while_loop '{step.op_name}' of {self.path} ran {_MAX_ITERATIONS} "
                            f"iterations without stopping.")

    @staticmethod
    def _why_unsupported(op, fn) -> str | None:
        try:
            inspect.signature(fn).bind(**{k: None for k in op.inputs})
        except TypeError as e:
            return f"inputs {sorted(op.inputs)} do not match the implementation ({e})"
        check = RULES[op.op_type].check if op.op_type in RULES else None
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
        if step.blocks is not None:  # its blocks' steps report their own failures
            return self._check_results(step, tuple(self._control(step, env)))
        kwargs = {k: ([env[n] for n in v] if isinstance(v, list) else env[v]) for k, v in step.inputs.items()}
        try:
            result = step.fn(**kwargs)
        except Exception as e:
            raise LoweringError(
                f"MIL interpreter failed in {step.op_type} op '{step.op_name}' of {self.path}: {type(e).__name__}: {e}"
            ) from e
        return self._check_results(step, result)

    def _check_results(self, step: _Step, result) -> list[np.ndarray]:
        """The step's results as the program declares them (dtype converted; a shape mismatch is our bug)."""
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

    def run(self, feeds: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
        """The program's outputs; keep_all: every var it computes (edgec.validate.layers)."""
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
                        if self._last_use.get(n) == i and n not in keep and not keep_all:
                            env.pop(n, None)
        if keep_all:
            return {k: v.astype(np.float32) if getattr(v, "dtype", None) == np.float16 else v
                    for k, v in env.items() if k not in self._consts and isinstance(v, np.ndarray)}
        outs = {}
        for name in self.output_names:
            value = env[name]
            outs[name] = value.astype(np.float32) if getattr(value, "dtype", None) == np.float16 else value
        return outs


def program_ranges(program, feeds: list[dict[str, np.ndarray]], function: str = "main") -> dict[str, float]:
    """max |x| of every float var an in-memory (not yet converted) MIL program computes, over `feeds` (keyed by
    the function's input names), run in fp32 with the same op implementations. The fp16 overflow guard reads
    this: intermediates a lowering composes (x*x inside a norm, a softmax's reshaped input) have no ONNX tensor
    whose range ONNX Runtime could report. Raises LoweringError for an op we cannot run."""
    func = program.functions[function]
    ops = registry()
    ranges: dict[str, float] = {}
    with np.errstate(all="ignore"):
        for feed in feeds:
            env = {name: np.asarray(feed[name]).astype(_np_dtype(var), copy=False) for name, var in func.inputs.items()}
            for op in func.operations:
                if op.op_type == "const":
                    env[op.outputs[0].name] = _const_value(op.outputs[0])
                    continue
                fn = ops.get(op.op_type)
                if fn is None or op.op_type in _CONTROL_FLOW:
                    raise LoweringError(f"no numpy implementation of MIL op '{op.op_type}'")
                kwargs = {}
                for k, v in op.inputs.items():
                    if isinstance(v, (list, tuple)):
                        kwargs[k] = [env[x.name] if x.name in env else _const_value(x) for x in v]
                    else:
                        kwargs[k] = env[v.name] if v.name in env else _const_value(v)
                result = fn(**kwargs)
                results = list(result) if isinstance(result, tuple) else [result]
                for var, value in zip(op.outputs, results):
                    dtype = _np_dtype(var)
                    value = np.asarray(value) if dtype is None else np.asarray(value).astype(dtype, copy=False)
                    env[var.name] = value
                    if value.dtype.kind == "f" and value.size:
                        m = float(np.max(np.abs(value))) if np.all(np.isfinite(value)) else float("inf")
                        ranges[var.name] = max(ranges.get(var.name, 0.0), m)
    return ranges
