"""The verbs of edgec as plain Python functions; the CLI only parses arguments and prints.

Data goes one way: profile + model -> graph (prepared once per profile) -> each backend's Artifact ->
validation metrics -> files in the output folder.
"""

from __future__ import annotations

import dataclasses

import errno
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import onnx

from edgec.artifact import ArtifactResult, BuildResult, LowerContext, ModelInfo, NumericsResult
from edgec.config.models import Profile, Target
from edgec.errors import EdgecError, InternalError, UnsupportedOp
from edgec.graph.info import model_info
from edgec.graph.load import load_model, load_model_renamed
from edgec.prepare import PreparedGraph, prepare, profile_shapes, quantize_key
from edgec.graph.shapes import parse_input_shape_flags
from edgec.graph.values import merged_values, parse_input_value_flags
from edgec.hashing import sha256_path, size_of
from edgec.lower.backend import get_backend
from edgec.package.files import ensure_out_dir, place, staging_dir
from edgec.package.publish import OutputFolder
from edgec.cache import BuildCache, build_key, model_digest
from edgec.package.html import write_html
from edgec.package.junit import write_junit
from edgec.package.manifest import artifact_result_from_entry, manifest_dict, model_info_from_dict, write_manifest
from edgec.package.report import write_report
from edgec.plan import plan_builds
from edgec.validate import latency as latency_mod
from edgec.validate.feeds import validation_feeds
from edgec.runtimes.outputs import output_kinds
from edgec.runtimes.numerics import check_reference_finite, compare, precision_key, reference_noise, thresholds
from edgec.runtimes.host_ort import OrtRunner


@dataclass
class BuildOptions:
    target: str | None = None
    profile: str | None = None
    out_dir: Path = Path("dist")
    input_shapes: list[str] = field(default_factory=list)  # NAME=D0,D1,... flags
    input_values: list[str] = field(default_factory=list)  # NAME=VALUE flags: inputs fixed to constants
    validate: bool = True
    model_name: str | None = None  # file stem for artifacts; defaults to the model file's stem
    latency: str | None = None  # overrides validate.latency.mode: host|emulate|estimate|device|off
    device: str | None = None  # overrides validate.latency.device: ssh://user@host[:port], adb:SERIAL, coreml
    budget_ms: float | None = None  # overrides validate.latency.budget_ms
    quantize: str | None = None  # overrides every profile's quantize.mode: none|fp16|int8|int8-dynamic|int8-weights
    calibration: str | None = None  # overrides quantize.calibration.source: a folder, or "random"
    validation_data: str | None = None  # overrides validate.data: a folder of .npy/.npz/images to validate on
    cache: bool = False  # restore unchanged builds from the content-addressed cache (the CLI turns it on)
    # lower up to this many targets at once in worker processes. Default 1: each spawned worker pays ~1-2 s of
    # imports (coremltools), more than lowering squeezenet or resnet50 takes, so it only pays off for big models
    # on machines with idle cores
    jobs: int = 1
    # how the worker process that contains native crashes starts (edgec.worker): "spawn" (safe in any caller),
    # "fork" (the CLI: its process has only imported modules when the worker starts, so nothing is imported twice)
    worker_start: str = "spawn"
    junit: Path | None = None  # also write a JUnit XML file (one test case per validation)
    emulator: str | None = None  # overrides validate.numerics.emulator: qemu[:CORE] (ARM-kernel numerics)
    # called as each stage starts: progress(stage, target or None, detail); stages: load, cache, prepare, lower,
    # validate, done, failed, report (the CLI prints them; a library caller may log them)
    progress: Callable[[str, str | None, str], None] | None = None

    def say(self, stage: str, target: str | None = None, detail: str = "") -> None:
        if self.progress is not None:
            self.progress(stage, target, detail)


@dataclass
class TargetFailure:
    target: str
    profile: str
    error: EdgecError


@dataclass
class BuildOutcome:
    result: BuildResult
    failures: list[TargetFailure]
    cache_hits: list[tuple[str, str]] = field(default_factory=list)  # (target, profile) restored from cache
    seconds: float = 0.0  # wall time of the whole build
    html_path: Path | None = None
    junit_path: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and self.result.passed


def _stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "model"


def _threads(profile: Profile) -> int:
    return max(1, min(profile.runtime.threads, os.cpu_count() or 1))


def _with_latency(profile: Profile, options: BuildOptions) -> Profile:
    """--latency / --device / --budget-ms override the profile's validate.latency (cache keys see them too)."""
    update = {k: v for k, v in (("mode", options.latency), ("device", options.device),
                                ("budget_ms", options.budget_ms)) if v is not None}
    if not update:
        return profile
    from edgec.config.models import LatencySpec

    lat = profile.validate_.latency
    try:
        lat = LatencySpec.model_validate({**lat.model_dump(), **update})
    except ValueError as e:
        from edgec.errors import UsageError

        raise UsageError(f"--latency/--device/--budget-ms: {e.errors()[0]['msg'] if hasattr(e, 'errors') else e}") from None
    return profile.model_copy(update={"validate_": profile.validate_.model_copy(update={"latency": lat})})


QUANT_MODES = ("none", "fp16", "int8", "int8-dynamic", "int8-weights")


def _with_quantize(profile: Profile, options: BuildOptions) -> Profile:
    """--quantize / --calibration override the profile's quantize settings (so cache keys see them too)."""
    if options.quantize is None and options.calibration is None:
        return profile
    if options.quantize is not None and options.quantize not in QUANT_MODES:
        from edgec.errors import UsageError

        raise UsageError(f"--quantize {options.quantize}: choose one of {', '.join(QUANT_MODES)}.")
    q = profile.quantize
    update: dict = {}
    if options.quantize is not None:
        update["mode"] = options.quantize
    if options.calibration is not None:
        update["calibration"] = q.calibration.model_copy(update={"source": options.calibration})
    return profile.model_copy(update={"quantize": q.model_copy(update=update)})


def _with_emulator(profile: Profile, options: BuildOptions) -> Profile:
    """--emulator qemu[:CORE] overrides validate.numerics.emulator (cache keys see it too)."""
    from edgec.validate.emulated import emulator_core

    if options.emulator is not None:
        from edgec.errors import UsageError

        try:
            num = profile.validate_.numerics.model_validate(
                {**profile.validate_.numerics.model_dump(), "emulator": options.emulator})
        except Exception:
            raise UsageError(f"--emulator {options.emulator}: write qemu or qemu:CORE (e.g. qemu:cortex-a76).") from None
        profile = profile.model_copy(update={"validate_": profile.validate_.model_copy(update={"numerics": num})})
    emulator_core(profile)  # an unknown core is refused before anything is lowered
    return profile
def _with_validation_data(profile: Profile, data: str | None) -> Profile:
    if data is None:
        return profile
    return profile.model_copy(update={"validate_": profile.validate_.model_copy(update={"data": data})})


class _Reference:
    """ONNX Runtime on the original model, on seeded inputs; computed once per input shape set."""

    def __init__(self, original: onnx.ModelProto):
        self.original = original
        self._cache: dict[tuple, tuple[list[dict], list[dict]]] = {}
        self.noise: dict[tuple, dict] = {}
        self.described: dict[tuple, str] = {}  # what the inputs were, for the report  # the reference's own float noise per output (reference_noise)
        self.kinds = output_kinds(original)  # how each output is compared (edgec.runtimes.outputs)

    def get(self, prepared: PreparedGraph, profile: Profile) -> tuple[list[dict], list[dict]]:
        key = self._key(prepared, profile)
        if key not in self._cache:
            feeds, self.described[key] = validation_feeds(prepared.model, profile, self.original, prepared.shapes,
                                                          ranged=bool(prepared.ranges))
            runner = OrtRunner(self.original, threads=_threads(profile))
            # inputs fixed to constants are gone from the artifact; the original still takes them
            full = [{**f, **prepared.values} for f in feeds]
            refs = [runner.run(f) for f in full]
            check_reference_finite(refs, self.described[key])
            self.noise[key] = {}
            if any(v.size for r in refs for v in r.values()):  # empty outputs (asked-for zero dims): no noise
                unoptimized = OrtRunner(self.original, threads=_threads(profile), level="disable")
                self.noise[key] = reference_noise(refs, [unoptimized.run(f) for f in full], self.kinds)
            self._cache[key] = (feeds, refs)
        return self._cache[key]

    def _key(self, prepared: PreparedGraph, profile: Profile) -> tuple:
        spec = profile.validate_.numerics
        return (tuple((k, tuple(v)) for k, v in sorted(prepared.shapes.items())), spec.seed, spec.samples,
                profile.validate_.data, str({k: v.model_dump_json() for k, v in sorted(profile.inputs.items())}),
                tuple((k, v.tobytes()) for k, v in sorted(prepared.values.items())))

    def noise_of(self, prepared: PreparedGraph, profile: Profile) -> dict:
        return self.noise[self._key(prepared, profile)]

    def inputs_of(self, prepared: PreparedGraph, profile: Profile) -> str:
        return self.described[self._key(prepared, profile)]


def build(model_path: Path | str, options: BuildOptions) -> BuildOutcome:
    """Build into a staging folder inside --out, then swap the previous set of files for the new one as a whole
    (edgec.package.publish): an interrupted or failed build leaves the previous complete set."""
    t_start = time.perf_counter()
    model_path = Path(model_path)
    pairs = [(t, _with_emulator(_with_validation_data(_with_latency(_with_quantize(p, options), options),
                                                      options.validation_data), options))
             for t, p in plan_builds(options.target, options.profile)]
    cli_shapes = parse_input_shape_flags(options.input_shapes)
    with OutputFolder(Path(options.out_dir)) as folder:
        outcome = _build_into(model_path, options, pairs, cli_shapes, folder.stage)
        if outcome.failures and not outcome.result.artifacts:
            raise _all_failed(outcome.failures)  # nothing built: the previous set stays, no folder is created
        folder.commit(sorted(p.name for p in folder.stage.iterdir() if not p.name.startswith(".")))
    outcome = _moved(outcome, folder.stage, folder.final)
    if options.junit:
        outcome.junit_path = write_junit(manifest_dict(outcome.result, [(f.target, f.profile, f.error)
                                                                      for f in outcome.failures]), options.junit)
    outcome.seconds = time.perf_counter() - t_start
    return outcome


def _all_failed(failures: list[TargetFailure]) -> EdgecError:
    first = failures[0].error
    if len(failures) == 1:
        return first
    cls = type(first)
    err = cls.__new__(cls)  # the first failure's kind and exit code; skip __init__ (its arguments differ by kind)
    by_message: dict[str, list[str]] = {}
    for f in failures:
        by_message.setdefault(str(f.error), []).append(f.target)
    EdgecError.__init__(err, "no target was built. " + " ".join(f"{', '.join(t)}: {m}" for m, t in by_message.items()))
    return err


def _moved(outcome: BuildOutcome, stage: Path, final: Path) -> BuildOutcome:
    """Paths in the outcome as they are after the commit (in the output folder, not the staging folder)."""
    def at(p: Path | None) -> Path | None:
        return final / p.relative_to(stage) if p is not None and p.is_relative_to(stage) else p

    r = outcome.result
    r.out_dir, r.manifest_path, r.report_path = final, at(r.manifest_path), at(r.report_path)
    for a in r.artifacts:
        a.final_path = at(a.final_path)
        a.artifact.extra_files = [at(e) for e in a.artifact.extra_files]
    outcome.html_path = at(outcome.html_path)
    return outcome


def _build_into(model_path: Path, options: BuildOptions, pairs, cli_shapes, out_dir: Path) -> BuildOutcome:
    t_start = time.perf_counter()
    name = options.model_name or _stem(model_path)
    single = len(pairs) == 1

    # cache lookup first: a full hit never loads or simplifies the model
    keys = _cache_keys(model_path, pairs, cli_shapes, name, options)
    store = BuildCache() if options.cache else None
    hits = {i: e for i, k in keys.items() if (e := store.lookup(k)) is not None} if store else {}
    worker = _worker(len(pairs) - len(hits), options, {t.format for i, (t, _) in enumerate(pairs) if i not in hits})
    try:
        return _build_targets(model_path, options, pairs, cli_shapes, out_dir, t_start, name, single, keys, store,
                              hits, worker)
    finally:
        if worker is not None:
            worker.close()


def _worker(misses: int, options: BuildOptions, formats: set[str] = frozenset()):
    """The worker process where every target is lowered and validated (edgec.worker: a native crash is that
    target's failure), started now so its imports overlap the model's loading and preparation. EDGEC_ISOLATE=0
    turns it off; --jobs N keeps its own parallel lowering. A library caller's single-target build stays in its
    process: a spawned worker would re-import everything (~2 s of CPU, as much as the build) for one target."""
    if misses < 1 or options.jobs > 1 or os.environ.get("EDGEC_ISOLATE", "1") == "0":
        return None
    from edgec.worker import Worker

    # EDGEC_WORKER_START=spawn|fork overrides how it starts (bench/isolation.py compares them)
    start = os.environ.get("EDGEC_WORKER_START") or options.worker_start
    if start == "spawn" and misses < 2 and not os.environ.get("EDGEC_WORKER_START"):
        return None
    if start == "fork":  # the backends' modules (this process needs them for the op-support check) first: the
        for fmt in sorted(formats):  # forked worker then imports only the runtimes that check the artifacts
            get_backend(fmt)
    w = Worker(warm=(__name__,), start=start)  # the tasks are this module's functions
    w.start()
    return w


def _build_targets(model_path, options, pairs, cli_shapes, out_dir, t_start, name, single, keys, store, hits,
                   worker) -> BuildOutcome:
    cli_values = parse_input_value_flags(options.input_values)
    model = info = None
    if len(hits) < len(pairs):
        options.say("load", None, str(model_path))
        model, renamed = load_model_renamed(model_path)
        info = model_info(model, model_path)
        info.renamed = renamed
    else:
        info = model_info_from_dict({**hits[0]["model"], "path": str(model_path)})

    results: dict[int, ArtifactResult] = {}
    failures: dict[int, TargetFailure] = {}
    quant_of: dict[int, object] = {}  # index -> QuantResult of a quantized target (cross-target table)
    for i, entry in hits.items():
        options.say("cache", pairs[i][0].name, "restored an unchanged build")
        results[i] = _restore(store, keys[i], entry, out_dir)

    todo = _prepare_misses(model, model_path, pairs, hits, cli_shapes, cli_values, options, failures)

    # lower (in parallel worker processes when there are several targets), then validate one at a time
    # in this process so latency is never measured while another target is being lowered
    reference = _Reference(model) if model is not None else None
    stream = _lower_all(todo, pairs, info, name, out_dir, options) if worker is None else \
        _in_worker(worker, todo, pairs, info, name, out_dir, reference, options)
    for i, prepared, prep_s, lowered in stream:
        target, profile = pairs[i]
        try:
            if isinstance(lowered, EdgecError):
                raise lowered
            if isinstance(lowered, ArtifactResult):  # lowered and validated in the worker process
                result = lowered
            else:
                artifact, stage, lower_s = lowered
                if options.validate:
                    options.say("validate", target.name, f"numerics and latency ({profile.validate_.latency.mode})")
                try:
                    result = _finish(get_backend(target.format), artifact, prepared, profile, out_dir, reference,
                                     options)
                finally:
                    shutil.rmtree(stage, ignore_errors=True)
                result.seconds = {"lower": lower_s, **result.seconds}
            result.seconds = {"prepare": prep_s, **result.seconds}
            result.artifact.details["pipeline"] = [r.as_dict() for r in prepared.pipeline]  # listed per target
            results[i] = result
            options.say("done", target.name, f"{result.artifact.format}, {result.bytes} bytes"
                        + ("" if not options.validate else ", passed" if result.passed else ", FAILED"))
            quant_of[i] = prepared.quant
            if store is not None and result.passed and i in keys:
                store.store(keys[i], result, info, out_dir)
        except Exception as e:
            failures[i] = _target_failed(e, "validate", single, target, profile, options)

    options.say("report", None, str(out_dir))
    build_result = BuildResult(model=info, out_dir=out_dir, artifacts=[results[i] for i in sorted(results)])
    if sum(q is not None for q in quant_of.values()) >= 2:
        from edgec.quantize.crosstarget import cross_target

        build_result.cross_target = cross_target([(pairs[i][0].name, q) for i, q in sorted(quant_of.items())])
    failure_list = [failures[i] for i in sorted(failures)]
    triples = [(f.target, f.profile, f.error) for f in failure_list]
    build_result.report_path = write_report(build_result, triples)
    html_path = write_html(manifest_dict(build_result, triples), out_dir)
    build_result.manifest_path = write_manifest(build_result, triples)  # last: it describes the files above
    return BuildOutcome(
        build_result, failure_list, cache_hits=[(pairs[i][0].name, pairs[i][1].name) for i in sorted(hits)],
        seconds=time.perf_counter() - t_start, html_path=html_path,
    )


def _target_failed(e: Exception, stage: str, single: bool, target, profile, options) -> TargetFailure:
    """One target's failure: raised as it is when it is the only target (a full disk as the user's OutputError),
    else recorded so the other targets still build."""
    if _interrupted(e):  # Ctrl-C inside a native module's import surfaces as its ImportError: still Ctrl-C
        raise KeyboardInterrupt from e
    if single and not isinstance(e, OSError):
        raise e
    if single:  # a full disk is the user's OutputError, not a bug
        raise _as_edgec_error(e, stage) from e
    failure = TargetFailure(target.name, profile.name, _as_edgec_error(e, stage))
    options.say("failed", target.name, failure.error.kind)
    return failure


def _interrupted(e: BaseException | None) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _as_edgec_error(e: Exception, stage: str) -> EdgecError:
    """One target's failure in a multi-target build: a user-caused error as it is, a full disk as an
    OutputError, anything else as that target's InternalError (the other targets still build)."""
    if isinstance(e, EdgecError):
        return e
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        from edgec.errors import OutputError

        return _caused_by(e, OutputError(f"Cannot write while lowering/validating ({stage}): {e.strerror}. Free "
                                         f"some space or pick another --out folder."))
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return _caused_by(e, InternalError(
        f"{stage} failed with {type(e).__name__}: {first}. This is a bug in edgec or one of its dependencies (a "
        f"multi-target build still builds the other targets); build this target alone with --debug for the "
        f"traceback and report it."))


def _caused_by(cause: Exception, err: EdgecError) -> EdgecError:
    err.__cause__ = cause  # --debug shows the original traceback
    return err


def _prepare_misses(model, model_path: Path, pairs, hits, cli_shapes, cli_values, options: BuildOptions,
                    failures: dict) -> list[tuple[int, PreparedGraph, float]]:
    """Prepare once per input-shape set, fixed values and quantize key, and check op support, in this process;
    the targets that cannot be built go into `failures` (raised when there is only one target)."""
    prepared_by_shapes: dict[tuple, PreparedGraph | Exception] = {}
    todo: list[tuple[int, PreparedGraph, float]] = []
    single = len(pairs) == 1
    for i, (target, profile) in enumerate(pairs):
        if i in hits:
            continue
        try:
            shapes = profile_shapes(profile, cli_shapes)
            values = merged_values(profile.inputs, cli_values)
            key = (tuple((k, tuple(v)) for k, v in sorted(shapes.items())), quantize_key(profile, target.format),
                   repr(sorted(values.items())), _dynamic_key(shapes, target.format))
            t0 = time.perf_counter()
            if key not in prepared_by_shapes:
                mode = profile.quantize.mode
                options.say("prepare", target.name,
                            "simplify, graph passes" + (f", quantize {mode}" if mode != "none" else ""))
                try:
                    prepared_by_shapes[key] = prepare(model, shapes, str(model_path), profile, target.format, values)
                except Exception as e:  # the next target with this key fails the same way: not prepared again
                    prepared_by_shapes[key] = e  # (a quantize.target that cannot be met searched once per target)
            if isinstance(prepared_by_shapes[key], Exception):
                raise prepared_by_shapes[key]
            problems = get_backend(target.format).unsupported(prepared_by_shapes[key].model)
            if problems:
                from edgec.graph.diagnose import explain

                raise UnsupportedOp(target.name, problems, **explain(prepared_by_shapes[key].model, problems))
            todo.append((i, prepared_by_shapes[key], time.perf_counter() - t0))
        except Exception as e:
            failures[i] = _target_failed(e, "prepare", single, target, profile, options)
    return todo


def _dynamic_key(shapes: dict, fmt: str) -> str:
    """With a range on an input axis, ORT prepares a graph that keeps it dynamic, the other formats a fixed one."""
    ranged = any(isinstance(d, tuple) for dims in shapes.values() for d in dims)
    return fmt if ranged and fmt == "ort" else ""


def _cache_keys(model_path: Path, pairs, cli_shapes, name: str, options: BuildOptions) -> dict[int, str]:
    # EDGEC_NO_CACHE=1: a test suite or CI job that must exercise the real build path every time
    if not options.cache or os.environ.get("EDGEC_NO_CACHE", "") not in ("", "0"):
        return {}
    try:
        model_sha = model_digest(model_path)
    except Exception:  # unreadable model: no cache; load_model below reports it properly
        return {}
    opts = {"input_shapes": {k: list(v) for k, v in sorted(cli_shapes.items())}, "validate": options.validate,
            "name": name, **({"input_values": sorted(options.input_values)} if options.input_values else {})}
    return {i: build_key(model_sha, t, p, opts) for i, (t, p) in enumerate(pairs)}


def _restore(store: BuildCache, key: str, entry: dict, out_dir: Path) -> ArtifactResult:
    t0 = time.perf_counter()
    stage = staging_dir(out_dir)
    try:
        for f in store.restore(key, entry, stage):
            place(f, out_dir / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    result = artifact_result_from_entry(entry["artifact"], out_dir)
    result.seconds = {"cache": time.perf_counter() - t0}
    result.artifact.notes = result.artifact.notes + ["restored from the edgec build cache (unchanged inputs)"]
    return result


def _lower_all(todo, pairs, info: ModelInfo, name: str, out_dir: Path, options: BuildOptions):
    """Yield (index, prepared, prepare seconds, (artifact, staging dir, lower seconds) or EdgecError) in order."""
    workers = min(len(todo), max(1, options.jobs), os.cpu_count() or 1)
    if workers < 2:
        for i, prepared, prep_s in todo:
            target, profile = pairs[i]
            options.say("lower", target.name, target.format)
            yield i, prepared, prep_s, _lower_guarded(prepared.model, target, profile, name, out_dir, info.sha256,
                                                      prepared.precision, prepared.notes)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: this process already runs ONNX Runtime thread pools, which do not survive a fork
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            (i, prepared, prep_s, pool.submit(
                _lower_in_worker, prepared.model.SerializeToString(), pairs[i][0], pairs[i][1], name, out_dir,
                info.sha256, prepared.precision, prepared.notes))
            for i, prepared, prep_s in todo
        ]
        for i, _, _, _ in futures:
            options.say("lower", pairs[i][0].name, f"{pairs[i][0].format}, in a worker process")
        for i, prepared, prep_s, fut in futures:
            try:
                out = _unpickle_error(fut.result())
            except BrokenProcessPool:
                # a worker died: OOM kill, or a caller whose __main__ spawn cannot re-import (stdin, no
                # `if __name__ == "__main__"` guard). Lower that target here instead.
                target, profile = pairs[i]
                out = _lower_guarded(prepared.model, target, profile, name, out_dir, info.sha256,
                                     prepared.precision, prepared.notes)
            yield i, prepared, prep_s, out


def _in_worker(worker, todo, pairs, info: ModelInfo, name: str, out_dir: Path, reference: _Reference,
               options: BuildOptions):
    """Yield (index, prepared, prepare seconds, ArtifactResult or EdgecError): each target lowered and validated
    in the worker process, where a native crash fails that target only. A quantized target's accuracy check fills
    its QuantResult's caches there (held-out references, the artifact's outputs for the cross-target table): they
    come back with the result and join this process's QuantResult, which the targets share."""
    from edgec.worker import WorkerUnavailable

    for i, prepared, prep_s in todo:
        target, profile = pairs[i]
        if worker is None:
            out = _lower_guarded(prepared.model, target, profile, name, out_dir, info.sha256, prepared.precision,
                                 prepared.notes)
            yield i, prepared, prep_s, out
            continue
        try:
            if options.validate:
                reference.get(prepared, profile)  # computed once here, shipped with the task
            # the progress callback stays here (a closure does not pickle): the worker's steps are relayed to it
            out, quant_state = worker.run(
                target.name, "edgec.api", "_target_task", prepared, target, profile, name, out_dir, info.sha256,
                reference, dataclasses.replace(options, progress=None),
                on_stage=lambda step, t=target: options.say(step, t.name, f"{t.format}, in a worker"))
            if quant_state is not None:
                _merge_quant_state(prepared.quant, *quant_state)
        except WorkerUnavailable:  # e.g. a caller whose __main__ a spawned process cannot re-import
            worker = None
            out = _lower_guarded(prepared.model, target, profile, name, out_dir, info.sha256, prepared.precision,
                                 prepared.notes)
        except EdgecError as e:
            out = e
        yield i, prepared, prep_s, out


def _merge_quant_state(quant, cache: dict, estimates: dict) -> None:
    """A worker's additions to a QuantResult's caches, into this process's copy (shared by the targets)."""
    from edgec.quantize.accuracy import OUTPUTS_KEY

    for key, value in cache.items():
        if key == OUTPUTS_KEY:
            quant.reference_cache.setdefault(key, {}).update(value)
        else:
            quant.reference_cache.setdefault(key, value)
    for key, value in estimates.items():
        quant._estimates.setdefault(key, value)


def _target_task(stage, *args) -> tuple[ArtifactResult, tuple | None]:
    """In the worker: _lower_and_validate, and what the accuracy check added to a QuantResult's caches."""
    prepared = args[0]
    result = _lower_and_validate(stage, *args)
    quant = prepared.quant
    return result, (None if quant is None else (quant.reference_cache, quant._estimates))


def _lower_and_validate(stage, prepared: PreparedGraph, target: Target, profile: Profile, name: str, out_dir: Path,
                        source_sha: str, reference: _Reference, options: BuildOptions) -> ArtifactResult:
    """In the worker: lower one target and validate it (`stage` reports each step to the parent)."""
    stage("lower")
    lowered = _lower_guarded(prepared.model, target, profile, name, out_dir, source_sha, prepared.precision,
                             prepared.notes)
    if isinstance(lowered, EdgecError):
        raise lowered
    artifact, staging, lower_s = lowered
    if options.validate:
        stage("validate")
    try:
        result = _finish(get_backend(target.format), artifact, prepared, profile, out_dir, reference, options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.seconds = {"lower": lower_s, **result.seconds}
    return result


def _lower_guarded(model, target: Target, profile: Profile, name: str, out_dir: Path, source_sha: str,
                   precision: str, notes: list[str]):
    """Lower one target into a fresh staging folder; an EdgecError is returned (not raised) so one failed
    target does not stop the others."""
    stage = staging_dir(out_dir)
    try:
        ctx = LowerContext(target=target, profile=profile, model_name=name, staging_dir=stage,
                           source_sha256=source_sha, precision=precision)
        t0 = time.perf_counter()
        artifact = get_backend(target.format).lower(model, ctx)
        artifact.notes = list(notes) + artifact.notes
        return artifact, stage, time.perf_counter() - t0
    except Exception as e:
        shutil.rmtree(stage, ignore_errors=True)
        return _as_edgec_error(e, "lower")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _lower_in_worker(model_bytes: bytes, *args):
    """_lower_guarded in a worker process. Errors travel as plain tuples: some EdgecErrors (UnsupportedOp)
    take constructor arguments that pickle cannot rebuild."""
    out = _lower_guarded(onnx.load_model_from_string(model_bytes), *args)
    if isinstance(out, EdgecError):
        return ("edgec-error", type(out).__module__, type(out).__qualname__, str(out))
    return out


def _unpickle_error(value):
    if isinstance(value, tuple) and value and value[0] == "edgec-error":
        import importlib

        _, module, qualname, message = value
        cls = getattr(importlib.import_module(module), qualname, EdgecError)
        err = cls.__new__(cls)  # skip __init__: its arguments (e.g. UnsupportedOp's problem list) are gone
        EdgecError.__init__(err, message)
        return err
    return value


def _finish(backend, artifact, prepared: PreparedGraph, profile: Profile, out_dir: Path, reference: _Reference,
            options: BuildOptions) -> ArtifactResult:
    """Validate a lowered artifact and rename its files from the staging folder into the output folder."""
    numerics = latency = arm = None
    t0 = time.perf_counter()
    if options.validate:
        numerics, latency, arm = _validate(backend, artifact, prepared, profile, reference)
    validate_s = time.perf_counter() - t0
    if prepared.values:  # the manifest records what the artifact was specialised to
        artifact.details["input_values"] = {n: v.tolist() for n, v in prepared.values.items()}
    final = out_dir / artifact.path.name
    for extra in artifact.extra_files:
        place(extra, out_dir / extra.name)
    place(artifact.path, final)
    artifact.extra_files = [out_dir / e.name for e in artifact.extra_files]
    return ArtifactResult(
        artifact=artifact, final_path=final, sha256=sha256_path(final), bytes=size_of(final),
        numerics=numerics, latency=latency, seconds={"validate": validate_s}, numerics_arm=arm,
    )


def _validate(backend, artifact, prepared: PreparedGraph, profile: Profile, reference: _Reference,
              gates: dict | None = None, table_dir="next-to-artifact"):
    if prepared.ranges and (prepared.dynamic or artifact.details.get("dynamic_axes")) and prepared.quant is None:
        from edgec.validate.lengths import validate_lengths

        # the one artifact at min, midpoint and max of every range; the max (the prepared shapes) goes on below
        prepared = validate_lengths(backend, artifact, prepared, profile, reference, gates, _threads(profile))
    feeds, ref_outputs = reference.get(prepared, profile)
    if all(v.size == 0 for out in ref_outputs for v in out.values()):
        # an empty input the user asked for (--input-shape x=0,...): a comparison of nothing cannot fail, so it
        # is not reported as a pass
        artifact.details["numerics"] = "nothing to compare: every output is empty (a zero-sized input dim)"
        artifact.notes.append("numerics: nothing to compare (every output is empty); latency not measured")
        return None, None, None
    threads = _threads(profile)
    runner = backend.runner(artifact, threads)
    actual = [runner.run(f) for f in feeds]
    spec = profile.validate_.numerics
    if prepared.quant is not None:  # reduced precision: held-out samples, per-precision thresholds, top-k
        from edgec.quantize.accuracy import evaluate
        from edgec.quantize.gate_data import gate_inputs
        from edgec.validate.speedup import predicted_speedup, speedup_note

        if table_dir == "next-to-artifact":  # a build (`edgec validate` keeps the build's summary)
            artifact.details["quantize"] = prepared.quant.summary()
            artifact.details["quantize"]["gate_inputs"] = gate_inputs(prepared.quant)  # which, how many
            artifact.details["quantize"]["predicted_speedup"] = predicted_speedup(prepared.quant, profile, artifact)
            if (note := speedup_note(prepared.quant, profile, artifact)) is not None:
                artifact.notes.append(note)
        original = reference.original
        if prepared.values:  # held-out samples lack the fixed inputs: the original with them as constants
            from edgec.graph.values import fix_input_values

            original = onnx.ModelProto()
            original.CopyFrom(reference.original)
            fix_input_values(original, {n: v.tolist() for n, v in prepared.values.items()})
        numerics = evaluate(prepared.quant, original, runner, spec, threads, keep_as=artifact.target)
    else:
        # the backend may itself reduce precision (CoreML fp16 compute, weight compression): gate on what was built
        gates = gates or thresholds(spec, artifact.precision)
        numerics: NumericsResult = compare(ref_outputs, actual, runner.name, gates["min_cosine"], gates["max_abs"],
                                           gates["min_delta_cosine"], kinds=reference.kinds,
                                           noise=reference.noise_of(prepared, profile))
        numerics.data = reference.inputs_of(prepared, profile)
        if (by_length := artifact.details.get("numerics_by_length")) and not all(r["passed"] for r in by_length):
            numerics.passed = False
            numerics.message = "; ".join(filter(None, [numerics.message] + [
                f"fails at input shapes {r['shapes']}: {r['message']}" for r in by_length if not r["passed"]]))
    if not numerics.passed and numerics.outputs and all(m.finite for m in numerics.outputs.values()):
        from edgec.validate.layers import explain_failure

        gate = numerics.thresholds.get("min_cosine") or 0.999
        numerics.message += "; " + explain_failure(prepared.model, artifact, feeds[0], gate)
    if precision_key(artifact.precision) == "int8":  # which integer arithmetic judged it (ort_exact)
        from edgec.runtimes.ort_exact import host_int8_kernels

        artifact.notes.append(f"int8 numerics on this host: {host_int8_kernels()}; ran on "
                              f"{getattr(runner, 'kernels', runner.name)}")
    from edgec.validate.emulated import arm_numerics

    arm = arm_numerics(artifact, prepared, profile, reference.original, feeds, ref_outputs, threads, actual)
    latency = latency_mod.measure_latency(runner, artifact, prepared.model, profile, feeds[0], threads,
                                          runner_for=lambda t: backend.runner(artifact, t), table_dir=table_dir)
    # what `edgec validate` needs to check this artifact again as the build did
    artifact.details["validation"] = {"input_shapes": {k: list(v) for k, v in sorted(prepared.shapes.items())},
                                      "data": profile.validate_.data}
    if prepared.quant is not None:
        q = profile.quantize
        artifact.details["validation"]["quantize"] = {"mode": q.mode, "calibration": q.calibration.source}
    return numerics, latency, arm


@dataclass
class CheckResult:
    info: ModelInfo
    # target -> (op_type, node, why) of the nodes it cannot take, root causes first (empty list = all supported)
    support: dict[str, list[tuple[str, str, str]]]
    dependents: dict[str, int]  # target -> how many of those nodes fail only because a root cause feeds them
    notes: list[str] = field(default_factory=list)


def check(model_path: Path | str, input_shapes: list[str] = (), profile: str | None = None,
          target: str | None = None) -> CheckResult:
    """Model facts and, per target, the nodes it cannot take in the graph a build would lower: the same
    preparation as `build` (input shapes fixed, onnxsim, graph passes). Neither --target nor --profile: every
    built-in target. A model whose dynamic inputs stay unfixed is checked as given, and a note says so."""
    model_path = Path(model_path)
    model = load_model(model_path)
    info = model_info(model, model_path)
    pairs = plan_builds(target or ("all" if not profile else None), profile)
    cli_shapes = parse_input_shape_flags(list(input_shapes))
    prepared: dict[tuple, onnx.ModelProto] = {}
    result = CheckResult(info, {}, {})
    for t, p in pairs:
        shapes = profile_shapes(p, cli_shapes)
        key = (tuple((k, tuple(v)) for k, v in sorted(shapes.items())), _dynamic_key(shapes, t.format))
        if key not in prepared:
            try:
                prepared[key] = prepare(model, shapes, str(model_path), target_format=t.format).model
            except EdgecError as e:  # typically a dynamic input without --input-shape
                prepared[key] = model
                result.notes.append(f"checked the model as given, not as a build would prepare it: {e}")
        try:
            problems = get_backend(t.format).unsupported(prepared[key])
        except EdgecError as e:
            problems = [("*", "*", str(e))]
        result.support[t.name], result.dependents[t.name] = _roots_first(prepared[key], problems)
    return result


def _roots_first(model: onnx.ModelProto, problems: list[tuple[str, str, str]]):
    """The refused nodes fed by no other refused node first (the ones to fix), then the rest, and their count."""
    refused = {p[1] for p in problems}
    # tensors computed from a refused node's output or a refused graph input (a dynamic shape)
    tainted: set[str] = {i.name for i in model.graph.input if i.name in refused}
    downstream: set[str] = set()
    for i, n in enumerate(model.graph.node):  # ONNX graphs are topologically sorted
        name = n.name or f"{n.op_type}_{i}"  # how the backends name an unnamed node
        fed = any(x in tainted for x in n.input)
        if fed and name in refused:
            downstream.add(name)
        if fed or name in refused:
            tainted.update(n.output)
    roots = [p for p in problems if p[1] not in downstream]
    return roots + [p for p in problems if p[1] in downstream], len(problems) - len(roots)


def validate_artifact(
    model_path: Path | str, artifact_path: Path | str, profile: str | None = None, input_shapes: list[str] = (),
    input_values: list[str] = (), validation_data: str | None = None, out_dir: Path | str | None = None,
    layers: bool = False,
) -> ArtifactResult:
    """Check an artifact built earlier (or by another tool) against its ONNX model: numerics and latency, by the
    same validation stage as build. When the build's manifest.json sits next to the artifact, its profile, input
    shapes, precision, gates and validation data are used, so the verdict is the build's. Nothing is written
    next to the artifact; with out_dir, the latency table, manifest.json and report.md of this check go there."""
    from edgec.artifact import Artifact
    from edgec.config.loader import all_targets, load_profile
    from edgec.errors import UsageError

    model_path, artifact_path = Path(model_path), Path(artifact_path)
    if not artifact_path.exists():
        raise UsageError(f"{artifact_path}: no such artifact. Give the path of a .ort, .tflite or .mlpackage file.")
    target = next((t for t in all_targets() if artifact_path.name.endswith(t.extension)), None)
    if target is None:
        known = ", ".join(t.extension for t in all_targets())
        raise UsageError(f"{artifact_path}: unknown artifact kind; edgec validates {known} files.")
    entry = _manifest_entry(artifact_path)
    built = (entry or {}).get("details", {}).get("validation", {})
    prof = load_profile(profile or (entry or {}).get("profile") or target.default_profile)
    prof = _with_validation_data(prof, validation_data or built.get("data"))
    if (lat := (entry or {}).get("latency")) and lat.get("mode"):  # the build's --latency/--budget-ms
        prof = _with_latency(prof, BuildOptions(latency=lat["mode"], budget_ms=lat.get("budget_ms")))
    model = load_model(model_path)
    # an artifact built with fixed input values lacks those inputs: the reference gets them, the artifact not
    values = merged_values(prof.inputs, parse_input_value_flags(list(input_values)))
    if not input_values and (entry or {}).get("details", {}).get("input_values"):  # the values it was built with
        values = dict(entry["details"]["input_values"])
    if not input_shapes and built.get("input_shapes"):  # the shapes the artifact was built at
        shapes = {k: list(v) for k, v in built["input_shapes"].items()}
    else:
        shapes = profile_shapes(prof, parse_input_shape_flags(list(input_shapes)))
    shapes = {k: v for k, v in shapes.items() if k not in values}
    if built.get("quantize"):  # quantized again as the build did (deterministic): its graph, held-out samples, gates
        q = built["quantize"]
        prof = _with_quantize(prof, BuildOptions(quantize=q["mode"], calibration=q["calibration"]))
        prepared = prepare(model, shapes, str(model_path), prof, target.format, values)
    else:  # the simplified graph the build lowered (and costed)
        prepared = prepare(model, shapes, str(model_path), values=values)
    precision = (entry or {}).get("precision", "unknown")
    artifact = Artifact(target=target.name, profile=prof.name, format=target.format, path=artifact_path,
                        precision=precision, details=dict((entry or {}).get("details", {})))
    gates = ((entry or {}).get("numerics") or {}).get("thresholds") or None
    if gates is None and precision != "unknown":
        gates = thresholds(prof.validate_.numerics, precision)
    table_dir = None
    if out_dir is not None:
        table_dir = ensure_out_dir(Path(out_dir))
    t0 = time.perf_counter()
    numerics, latency, arm = _validate(get_backend(target.format), artifact, prepared, prof, _Reference(model),
                                       gates=gates, table_dir=table_dir)
    if layers:  # the first divergent layer on demand (a failed check has it in its message already)
        from edgec.validate.layers import explain_failure
        from edgec.validate.feeds import validation_feeds

        feed = validation_feeds(prepared.model, prof, model)[0][0]
        gate = numerics.thresholds.get("min_cosine") or 0.999
        artifact.details["layers"] = explain_failure(prepared.model, artifact, feed, gate)
    result = ArtifactResult(
        artifact=artifact, final_path=artifact_path, sha256=sha256_path(artifact_path), bytes=size_of(artifact_path),
        numerics=numerics, latency=latency, seconds={"validate": time.perf_counter() - t0}, numerics_arm=arm,
    )
    if out_dir is not None:
        import json
        from dataclasses import asdict

        data = {"artifact": str(artifact_path), "model": str(model_path), "profile": prof.name,
                "precision": precision, "passed": result.passed,
                "numerics": asdict(numerics) if numerics else None, "latency": asdict(latency) if latency else None}
        (Path(out_dir) / "validation.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    return result


def _manifest_entry(artifact_path: Path) -> dict | None:
    """The build manifest's entry for this artifact (manifest.json in the same folder), if there is one."""
    import json

    manifest = artifact_path.parent / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    return next((a for a in data.get("artifacts", []) if a.get("path") == artifact_path.name), None)
