"""ONNX backend node tests (`onnx.backend.test.case.node`) run through any edgec backend.

Each case is one small ONNX model with inputs and expected outputs. A case is lowered by the backend exactly
as a build would (unsupported -> lower -> runner) and its outputs compared with the expected ones.
The population is every case of the installed onnx that is not an `*_expanded` copy of another (those
re-test the same op through its function body); nothing is left out for lack of support.
Outcomes: pass; fail (ran, wrong numbers/shape/dtype); unsupported, shown as *refused* (the backend said
which node it cannot take and why: an honest answer, not a bug); error (anything else blew up, crashed or hung).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import multiprocessing as mp
import random
import re
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import onnx
from onnx import numpy_helper

from edgec import conformance_refs

OUTCOMES = ("pass", "fail", "unsupported", "error")
# fp32 tolerances: ONNX's own runner uses rtol 1e-3 / atol 1e-7; a lowered fp32 graph may reorder sums
# and use other transcendental approximations, so near-zero values get an absolute floor of 1e-5.
RTOL = 1e-3
ATOL = 1e-5


@dataclass
class CaseResult:
    name: str
    op: str  # the op family the case belongs to (the un-expanded op for *_expanded cases)
    outcome: str  # one of OUTCOMES
    max_abs: float | None = None
    detail: str = ""  # first line of the reason / error / mismatch; refusals: "<Op> node '<name>': <why>"
    seconds: float = 0.0
    ran_on: str = ""  # the runner's name (which runtime produced the outputs)
    folded: bool = False  # ran with its parameter inputs as constants (the backend refused them as inputs)
    checked: str = ""  # when not against the case's listed values: what was checked instead (conformance_refs)


# --- collecting cases -------------------------------------------------------------------------------------

def collect(ops: Iterable[str] | None = None) -> list:
    """Node test cases. With `ops`, only the modules named after those ops are imported (fast subsets);
    their cases (including *_expanded ones) are returned. Without, all ~1,900 cases (~8 s)."""
    import onnx.backend.test.case.node as node_pkg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the case generators overflow casts on purpose
        if ops is None:
            return list(node_pkg.collect_testcases())
        wanted = set(ops)
        for op in wanted:
            snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", op).lower()  # ReduceLogSum -> reduce_log_sum
            found = False
            for module in dict.fromkeys((op.lower(), snake)):
                with contextlib.suppress(ModuleNotFoundError):
                    importlib.import_module(f"{node_pkg.__name__}.{module}")
                    found = True
            if not found:  # the module is named otherwise: import them all
                node_pkg.collect_testcases()
                break
    cases = list(node_pkg._NodeTestCases)
    families = family_map(cases)
    return [c for c in cases if families[c.name] in wanted]


_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


def is_expanded(name: str) -> bool:
    return bool(_EXPANDED.search(name))


def population(cases: list) -> list:
    """The counted cases: every case that is not an `*_expanded` copy, in the order onnx lists them."""
    return [c for c in cases if not is_expanded(c.name)]


def family_map(cases: list) -> dict[str, str]:
    """Case name -> op family. Single-node cases: the node's op; *_expanded cases: their parent's op."""
    fam = {}
    for c in cases:
        ops = sorted({n.op_type for n in c.model.graph.node})
        fam[c.name] = ops[0] if len(ops) == 1 and not _EXPANDED.search(c.name) else ""
    for c in cases:
        if not fam[c.name]:
            base = _EXPANDED.sub("", c.name)
            fam[c.name] = fam.get(base) or "+".join(sorted({n.op_type for n in c.model.graph.node}))
    return fam


def ops_of(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node}


def select(cases: list, supported: Iterable[str]) -> list:
    """Cases whose every node op is in the backend's op table."""
    sup = set(supported)
    return [c for c in cases if ops_of(c.model) <= sup]


def sample(cases: list, per_op: int = 1, seed: int = 0) -> list:
    """A stratified sample: `per_op` cases of every op family (all of a family with fewer), chosen with a
    seeded RNG so the same onnx gives the same sample. Order as in `cases`."""
    fam = family_map(cases)
    by_op: dict[str, list] = defaultdict(list)
    for c in cases:
        by_op[fam[c.name]].append(c.name)
    rng = random.Random(seed)
    keep = set()
    for op in sorted(by_op):
        names = by_op[op]
        keep.update(names if len(names) <= per_op else rng.sample(names, per_op))
    return [c for c in cases if c.name in keep]


# --- running one case -------------------------------------------------------------------------------------

def _as_value(value):
    """A case value as the runners take it: ndarray, list (sequence) or None (an empty optional)."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    if isinstance(value, (list, tuple)):
        return [_as_value(v) for v in value]
    return value


def _value_kind(vtype: onnx.TypeProto) -> str:
    return vtype.WhichOneof("value") or "tensor_type"


def _non_tensor_io(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(graph input/output name, its kind) for every graph value that is not a plain tensor."""
    return [(v.name, _value_kind(v.type).replace("_type", ""))
            for v in [*model.graph.input, *model.graph.output] if _value_kind(v.type) != "tensor_type"]


def named_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose unnamed nodes are called '<Op>_<index>', so refusals can name them (most node tests and
    many exporters leave node names empty)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for i, node in enumerate(out.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    return out


def context_for(fmt: str, staging: Path, name: str):
    """LowerContext for the built-in target of this format and its default profile, always fp32."""
    from edgec.artifact import LowerContext
    from edgec.config.loader import all_targets, load_profile

    target = next(t for t in all_targets() if t.format == fmt)
    profile = load_profile(target.default_profile)
    # fp32 compute everywhere: CoreML reads it from the target, or from the profile's coreml section, which
    # is otherwise reset to its defaults (no weight compression, image inputs or classifier labels)
    target = target.model_copy(update={"coreml_compute_precision": "fp32"})
    coreml = getattr(profile, "coreml", None)
    if coreml is not None and hasattr(coreml, "compute_precision"):
        profile = profile.model_copy(update={"coreml": type(coreml)(compute_precision="fp32")})
    return LowerContext(target=target, profile=profile, model_name=name, staging_dir=staging, precision="fp32")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = re.sub(r"\S*edgec-conf-[^/\s]+", "<staging>", text[0] if text else "")  # same text every run
    return f"{type(e).__name__}: {line}"[:300]


def compare(expected, actual) -> tuple[bool, float | None, str]:
    """(ok, max_abs, why-not). Shapes and dtypes must match exactly; floats within RTOL/ATOL (NaN == NaN,
    infinities equal); sequences element by element; an empty optional (None) only equals None."""
    if expected is None or isinstance(expected, list):
        return _compare_composite(expected, actual)
    if isinstance(actual, list) or actual is None:
        return False, None, f"a {'sequence' if actual is not None else 'missing value'} where a tensor was expected"
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        return False, None, f"shape {list(actual.shape)} != expected {list(expected.shape)}"
    if actual.dtype != expected.dtype:
        return False, None, f"dtype {actual.dtype} != expected {expected.dtype}"
    if expected.dtype.kind in "fc" or _is_ml_float(expected.dtype):
        e64, a64 = expected.astype(np.float64), actual.astype(np.float64)
        both = np.isfinite(e64) & np.isfinite(a64)
        diff = np.abs(e64[both] - a64[both])
        max_abs = float(diff.max()) if diff.size else 0.0
        rtol, atol = tolerances(expected)
        close = bool(np.allclose(a64[both], e64[both], rtol=rtol, atol=atol))
        # NaN where NaN is expected, the same infinity where one is expected, and nothing else non-finite
        # an expected +-inf may come back as the type's largest finite value of that sign (ORT writes
        # -FLT_MAX for masked attention scores; either gives a softmax weight of exactly 0)
        big = float(np.finfo(actual.dtype).max) if actual.dtype.kind == "f" or _is_ml_float(actual.dtype) else np.inf
        a64 = np.where(np.isinf(e64) & (np.abs(a64) == big) & (np.sign(a64) == np.sign(e64)), e64, a64)
        odd = int(((np.isnan(e64) != np.isnan(a64)) | (np.isinf(e64) != np.isinf(a64))
                   | (np.isinf(e64) & (e64 != a64))).sum())
        why = [] if close else [f"max_abs {max_abs:.3g}"]
        if odd:
            why.append(f"{odd} inf/nan value(s) differ")
        return close and not odd, max_abs, "; ".join(why)
    if expected.dtype.kind in "iub" or _is_ml_int(expected.dtype):
        e64, a64 = expected.astype(np.float64), actual.astype(np.float64)
        ok = bool(np.array_equal(e64, a64))
        diff = np.abs(e64 - a64) if expected.size else np.zeros(1)
        return ok, float(diff.max()), "" if ok else f"{int((e64 != a64).sum())} element(s) differ"
    ok = bool(np.array_equal(expected, actual))
    return ok, None, "" if ok else "values differ"


def tolerances(expected: np.ndarray) -> tuple[float, float]:
    """(rtol, atol) for one float output: RTOL/ATOL, widened to the output type's own rounding. rtol: two units
    in the last place of its type (fp16 2e-3, bf16 1.6e-2; 8-bit floats come from casts, compared as given); atol: eight units in the last place of the output's
    largest magnitude, so that near-zero elements of a long sum (DFT bins, attention) are judged at the scale
    the sum was computed at, not at an absolute 1e-5."""
    wide = expected.dtype.itemsize > 1 and (expected.dtype.kind in "fc" or _is_ml_float(expected.dtype))
    eps = float(np.finfo(expected.dtype).eps) if wide else 0.0
    finite = np.abs(expected.astype(np.float64))
    finite = finite[np.isfinite(finite)]
    scale = float(finite.max()) if finite.size else 0.0
    return max(RTOL, 2 * eps), max(ATOL, 8 * eps * scale)


def _is_ml_float(dtype: np.dtype) -> bool:
    """bfloat16 / float8 / float4 from ml_dtypes (numpy kind 'V'): compared as floats."""
    return dtype.kind == "V" and ("float" in dtype.name or "e8m0" in dtype.name)


def _is_ml_int(dtype: np.dtype) -> bool:
    """int4 / uint4 / int2 / uint2 from ml_dtypes: compared exactly."""
    return dtype.kind == "V" and "int" in dtype.name


def _compare_composite(expected, actual) -> tuple[bool, float | None, str]:
    if expected is None:
        return (actual is None), None, "" if actual is None else "a value where an empty optional was expected"
    if not isinstance(actual, list):
        return False, None, f"expected a sequence of {len(expected)}, got {type(actual).__name__}"
    if len(actual) != len(expected):
        return False, None, f"sequence of {len(actual)} != expected {len(expected)}"
    worst: float | None = None
    for i, (e, a) in enumerate(zip(expected, actual)):
        ok, max_abs, why = compare(e, a)
        if max_abs is not None:
            worst = max(worst or 0.0, max_abs)
        if not ok:
            return False, worst, f"[{i}]: {why}"
    return True, worst, ""


def run_case(backend, case, family: str = "", fold: bool = True) -> CaseResult:
    """Lower and run one case through `backend`; never raises (every outcome is a CaseResult).

    fold: when the backend refuses the case as given, retry it with the parameter inputs (every graph input
    that is not some node's first input: axes, shape, pads, scales, weights...) as initializers, which is
    how exported models carry them. A result of that retry is marked `folded`."""
    t0 = time.perf_counter()
    res = CaseResult(name=case.name, op=family or case.model.graph.node[0].op_type, outcome="error")
    inputs, outputs = case.data_sets[0]
    model = named_nodes(case.model)
    initialized = {i.name for i in model.graph.initializer}
    in_names = [i.name for i in model.graph.input if i.name not in initialized]
    feeds = {n: _as_value(v) for n, v in zip(in_names, inputs)}
    expected = {o.name: _as_value(v) for o, v in zip(model.graph.output, outputs)}
    odd = _non_tensor_io(model)
    if odd and not getattr(backend, "takes_sequences", False):
        name, kind = odd[0]
        node = next((n for n in model.graph.node if name in n.input or name in n.output), model.graph.node[0])
        res.outcome = "unsupported"
        res.detail = (f"{node.op_type} node '{node.name}': graph {'input' if name in feeds else 'output'} "
                      f"'{name}' is a {kind} value; the {backend.format} backend takes and returns tensors only "
                      f"(pass the tensors separately, or build for ort-mobile)")
        res.seconds = time.perf_counter() - t0
        return res
    res.outcome, res.max_abs, res.detail, res.ran_on, res.checked = _attempt(backend, model, feeds, expected,
                                                                             case.name)
    if fold and res.outcome == "unsupported":
        params = _parameter_inputs(model, feeds)
        if params:
            folded = _fold(model, {n: feeds[n] for n in params})
            rest = {n: v for n, v in feeds.items() if n not in params}
            again = _attempt(backend, folded, rest, expected, case.name)
            if again[0] != "unsupported":
                res.outcome, res.max_abs, res.detail, res.ran_on, res.checked = again
                res.folded = True
            elif again[2] != res.detail:  # what still stops it once the parameters are constants
                res.detail = f"{again[2][:260]} (with its parameter inputs as constants)"
    res.seconds = time.perf_counter() - t0
    return res


def _parameter_inputs(model: onnx.ModelProto, feeds: dict) -> list[str]:
    firsts = {n.input[0] for n in model.graph.node if n.input}
    return [name for name, v in feeds.items() if name not in firsts and isinstance(v, np.ndarray)]


def _fold(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    keep = [i for i in out.graph.input if i.name not in values]
    del out.graph.input[:]
    out.graph.input.extend(keep)
    out.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), n) for n, v in values.items())
    return out


def _without_undefined(model: onnx.ModelProto, feeds: dict, out: str, expected, actual):
    """`actual` with the elements the ONNX spec leaves undefined set to the expected ones. Cast/CastLike of a
    float to a fixed-point type is undefined out of range ("fixed point: undefined if OOR"), and to FLOAT8E8M0
    for negative values; the node tests still list numpy's arbitrary answer for them (int4 -9 -> 0)."""
    node = model.graph.node[0] if len(model.graph.node) == 1 else None
    if (node is None or node.op_type not in ("Cast", "CastLike") or not isinstance(actual, np.ndarray)
            or not isinstance(expected, np.ndarray) or actual.shape != expected.shape or actual.dtype != expected.dtype):
        return actual
    x = feeds.get(node.input[0])
    if not isinstance(x, np.ndarray) or not (x.dtype.kind == "f" or _is_ml_float(x.dtype)):
        return actual
    x = x.astype(np.float64)
    if expected.dtype.kind in "iu" or _is_ml_int(expected.dtype):
        import ml_dtypes

        info = ml_dtypes.iinfo(expected.dtype)
        undefined = ~(np.isfinite(x) & (x > info.min - 1) & (x < info.max + 1))  # in range once truncated
    elif expected.dtype.name == "float8_e8m0fnu":
        undefined = x < 0
    else:
        return actual
    if not undefined.any():
        return actual
    fixed = actual.copy()
    fixed[undefined] = expected[undefined]
    return fixed


def _judge(model, feeds, expected: dict, actual: dict) -> tuple[str, float, str]:
    """(pass/fail, worst max_abs, why) of every output against `expected`."""
    worst, why = 0.0, []
    for out, exp in expected.items():
        got = _without_undefined(model, feeds, out, exp, actual[out])
        ok, max_abs, msg = compare(exp, got)
        if max_abs is not None:
            worst = max(worst, max_abs)
        if not ok:
            why.append(f"{out}: {msg}")
    return ("fail" if why else "pass"), worst, "; ".join(why)[:300]


def refusal(problems: list[tuple[str, str, str]], model: onnx.ModelProto | None = None) -> str:
    """One line naming each refused node: "<Op> node '<name>': <why>" (distinct ones, in graph order).
    A problem a backend reports on a graph input ("graph input node 'x'") is named after the first node
    that reads that input."""
    nodes = {n.name: n for n in model.graph.node} if model is not None else {}
    parts = []
    for op, name, why in problems:
        node = nodes.get(name)
        if model is not None and (node is None or node.op_type != op):
            reader = next((n for n in model.graph.node if name in n.input), None)
            if reader is not None:
                op, name, why = reader.op_type, reader.name, f"{op.lower()} '{name}': {why}"
        parts.append(f"{op} node '{name}': {why}")
    return "; ".join(dict.fromkeys(parts))[:300]


def _attempt(backend, model, feeds, expected, name) -> tuple[str, float | None, str, str, str]:
    """(outcome, max_abs, detail, ran_on, checked) of one lowering + run."""
    from edgec.errors import UnsupportedOp

    ran_on = ""
    original = model
    try:
        problems = backend.unsupported(model)
        if problems:
            return "unsupported", None, refusal(problems, model), ran_on, ""
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        with tempfile.TemporaryDirectory(prefix="edgec-conf-") as tmp:
            ctx = context_for(backend.format, Path(tmp), name)
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                artifact = backend.lower(model, ctx)
                runner = backend.runner(artifact, 1)
                ran_on = runner.name
                actual = runner.run(feeds)
        random = conformance_refs.random_check(original, feeds, actual)
        if random is not None:  # random draws: the defining property, not numpy's draws
            return ("pass" if random[0] else "fail"), None, random[1][:300], ran_on, \
                "random draws: the defining property (y = mask * x / (1 - ratio))"
        missing = [out for out in expected if out not in actual]
        if missing:
            return "error", None, f"output '{missing[0]}' missing from the runner's outputs", ran_on, ""
        outcome, worst, why = _judge(model, feeds, expected, actual)
        recomputed = conformance_refs.recomputed_expected(original, feeds)
        if outcome == "fail" and recomputed is not None:  # a disputed reference: its other reading passes too
            again = _judge(model, feeds, {**expected, **recomputed[0]}, actual)
            if again[0] == "pass":
                return "pass", again[1], "", ran_on, recomputed[1]
        return outcome, worst, why, ran_on, ""
    except UnsupportedOp as e:
        return "unsupported", None, refusal(getattr(e, "problems", []), original) or str(e)[:300], ran_on, ""
    except Exception as e:  # noqa: BLE001  (conformance records every failure kind)
        # built, then failed to run: the backend's runtime may itself refuse the case (ORT: when it fails on the
        # original model as well); anything else is an error
        if ran_on and hasattr(backend, "refusal_at_run"):
            with contextlib.suppress(Exception):
                refused = backend.refusal_at_run(original, feeds, str(e))
                if refused is not None:
                    return "unsupported", None, refusal([refused]), ran_on, ""
        return "error", None, _first_line(e), ran_on, ""


# --- running many cases, isolated from crashes and hangs --------------------------------------------------

def _worker(fmt: str, ops: list[str] | None, fold: bool, conn) -> None:
    from edgec.lower.backend import get_backend

    with contextlib.suppress(ImportError):  # ORT's C++ logger repeats on stderr what the results already say
        import onnxruntime

        onnxruntime.set_default_logger_severity(4)
    backend = get_backend(fmt)
    cases = collect(ops)
    fam = family_map(cases)
    by_name = {c.name: c for c in cases}
    conn.send("ready")
    while True:
        name = conn.recv()
        if name is None:
            return
        conn.send(asdict(run_case(backend, by_name[name], fam[name], fold)))


class _Isolated:
    """One worker process; a case that crashes (segfault) or hangs costs that case, not the run."""

    def __init__(self, fmt: str, ops: list[str] | None, timeout: float, fold: bool):
        self.fmt, self.ops, self.timeout, self.fold = fmt, ops, timeout, fold
        self.proc = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(self.fmt, self.ops, self.fold, child), daemon=True)
        self.proc.start()
        if not self.conn.poll(900) or self.conn.recv() != "ready":  # a loaded machine imports slowly
            raise RuntimeError("conformance worker did not start")

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
            self.proc = None

    def run(self, name: str, family: str) -> CaseResult:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        t0 = time.perf_counter()
        self.conn.send(name)
        try:
            if self.conn.poll(self.timeout):
                return CaseResult(**self.conn.recv())
            why = f"timed out after {self.timeout:.0f} s"
        except EOFError:
            why = f"worker crashed (exit code {self.proc.exitcode})"
        self._kill()
        return CaseResult(name=name, op=family, outcome="error", detail=why, seconds=time.perf_counter() - t0)

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(10)
        self._kill()


def run(fmt: str, ops: Iterable[str] | None = None, names: Iterable[str] | None = None, isolate: bool = False,
        timeout: float = 120.0, progress: Callable[[CaseResult], None] | None = None,
        fold: bool = True, workers: int = 1, per_op: int | None = None, seed: int = 0,
        claimed_only: bool = False) -> list[CaseResult]:
    """Run every counted node test (see `population`) through the `fmt` backend, in onnx's order.

    ops: restrict to these op families; names: restrict to these case names; per_op: a stratified sample of
    that many cases per op family (see `sample`, seeded); claimed_only: only cases whose ops are all in the
    backend's supported_ops() (the old, flattering selection); isolate: run in worker processes with a
    per-case timeout (a runtime segfault then costs one case); workers: that many processes at once;
    fold: see run_case."""
    from edgec.lower.backend import get_backend

    ops = sorted(set(ops)) if ops is not None else None
    backend = get_backend(fmt)
    cases = collect(ops)
    fam = family_map(cases)
    chosen = population(cases)
    if claimed_only:
        chosen = select(chosen, backend.supported_ops())
    if names is not None:
        wanted = set(names)
        chosen = [c for c in chosen if c.name in wanted]
    if per_op is not None:
        chosen = sample(chosen, per_op, seed)
    if not isolate:
        results = []
        for case in chosen:
            results.append(run_case(backend, case, fam[case.name], fold))
            if progress:
                progress(results[-1])
        return results
    return _run_isolated(fmt, ops, chosen, fam, timeout, fold, max(1, workers), progress)


def _run_isolated(fmt, ops, chosen, fam, timeout, fold, workers, progress) -> list[CaseResult]:
    """Cases handed out one at a time to `workers` worker processes (one driving thread each); results in
    the order of `chosen` whatever order they finish in."""
    todo = list(enumerate(chosen))
    results: list[CaseResult | None] = [None] * len(chosen)
    lock = threading.Lock()

    def drive() -> None:
        pool = _Isolated(fmt, ops, timeout, fold)
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    i, case = todo.pop(0)
                try:
                    r = pool.run(case.name, fam[case.name])
                except Exception as e:  # noqa: BLE001  (a worker that cannot start: the case still counts)
                    pool.close()
                    r = CaseResult(name=case.name, op=fam[case.name], outcome="error", detail=_first_line(e))
                with lock:
                    results[i] = r
                    if progress:
                        progress(r)
        finally:
            pool.close()

    threads = [threading.Thread(target=drive, daemon=True) for _ in range(min(workers, len(chosen)) or 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


# --- summaries --------------------------------------------------------------------------------------------

@dataclass
class OpRow:
    op: str
    counts: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)  # distinct reasons, most common first


def table(results: list[CaseResult]) -> list[OpRow]:
    """Per-op-family counts and the distinct reasons behind non-passing cases."""
    rows: dict[str, OpRow] = {}
    reasons: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        row = rows.setdefault(r.op, OpRow(r.op))
        row.counts[r.outcome] += 1
        row.counts["folded"] += r.folded
        if r.outcome in ("fail", "unsupported", "error"):
            key = r.detail if r.outcome != "fail" else "numbers/shape differ"
            reasons[r.op][f"{r.outcome}: {_generic(key)}"] += 1
    for op, row in rows.items():
        row.notes = [f"{why} (x{n})" if n > 1 else why for why, n in reasons[op].most_common()]
    return [rows[k] for k in sorted(rows)]


def _generic(text: str) -> str:
    """Reasons without per-case names/numbers, so the same cause collapses to one note."""
    text = re.sub(r"'[^']*'", "'…'", text)
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", text)[:160]


def totals(results: list[CaseResult]) -> Counter:
    out = Counter(r.outcome for r in results)
    out["folded"] = sum(r.folded for r in results)
    return out
