"""The verbs of edgec as plain Python functions; the CLI only parses arguments and prints.

Data goes one way: profile + model -> graph (prepared once per profile) -> each backend's Artifact ->
validation metrics -> files in the output folder.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from edgec.artifact import ArtifactResult, BuildResult, LowerContext, ModelInfo, NumericsResult
from edgec.config.models import Profile, Target
from edgec.errors import EdgecError, InternalError, UnsupportedOp
from edgec.graph.info import model_info
from edgec.graph.load import load_model, load_model_renamed
from edgec.graph.prepare import PreparedGraph, prepare, profile_shapes, quantize_key
from edgec.graph.shapes import parse_input_shape_flags
from edgec.hashing import sha256_path, size_of
from edgec.lower.backend import get_backend
from edgec.package.files import place, staging_dir
from edgec.package.publish import OutputFolder
from edgec.cache import BuildCache, build_key, model_digest
from edgec.package.html import write_html
from edgec.package.junit import write_junit
from edgec.package.manifest import artifact_result_from_entry, manifest_dict, model_info_from_dict, write_manifest
from edgec.package.report import write_report
from edgec.plan import plan_builds
from edgec.validate import latency as latency_mod
from edgec.validate.inputs import input_specs, random_inputs
from edgec.validate.numerics import compare, thresholds
from edgec.validate.runners.host_ort import OrtRunner


@dataclass
class BuildOptions:
    target: str | None = None
    profile: str | None = None
    out_dir: Path = Path("dist")
    input_shapes: list[str] = field(default_factory=list)  # NAME=D0,D1,... flags
    validate: bool = True
    model_name: str | None = None  # file stem for artifacts; defaults to the model file's stem
    latency: str | None = None  # overrides validate.latency.mode: host|emulate|estimate|device|off
    device: str | None = None  # overrides validate.latency.device: ssh://user@host[:port], adb:SERIAL, coreml
    budget_ms: float | None = None  # overrides validate.latency.budget_ms
    quantize: str | None = None  # overrides every profile's quantize.mode: none|fp16|int8|int8-dynamic|int8-weights
    calibration: str | None = None  # overrides quantize.calibration.source: a folder, or "random"
    cache: bool = False  # restore unchanged builds from the content-addressed cache (the CLI turns it on)
    # lower up to this many targets at once in worker processes. Default 1: each spawned worker pays ~1-2 s of
    # imports (coremltools), more than lowering squeezenet or resnet50 takes, so it only pays off for big models
    # on machines with idle cores
    jobs: int = 1
    junit: Path | None = None  # also write a JUnit XML file (one test case per validation)


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


class _Reference:
    """ONNX Runtime on the original model, on seeded inputs; computed once per input shape set."""

    def __init__(self, original: onnx.ModelProto):
        self.original = original
        self._cache: dict[tuple, tuple[list[dict], list[dict]]] = {}

    def get(self, prepared: PreparedGraph, profile: Profile) -> tuple[list[dict], list[dict]]:
        spec = profile.validate_.numerics
        key = (tuple((k, tuple(v)) for k, v in sorted(prepared.shapes.items())), spec.seed, spec.samples)
        if key not in self._cache:
            feeds = random_inputs(input_specs(prepared.model), seed=spec.seed, samples=max(spec.samples, 2))
            runner = OrtRunner(self.original, threads=_threads(profile))
            self._cache[key] = (feeds, [runner.run(f) for f in feeds])
        return self._cache[key]


def build(model_path: Path | str, options: BuildOptions) -> BuildOutcome:
    """Build into a staging folder inside --out, then swap the previous set of files for the new one as a whole
    (edgec.package.publish): an interrupted or failed build leaves the previous complete set."""
    t_start = time.perf_counter()
    model_path = Path(model_path)
    pairs = [(t, _with_latency(_with_quantize(p, options), options))
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
    worker = _worker(len(pairs) - len(hits), options)
    try:
        return _build_targets(model_path, options, pairs, cli_shapes, out_dir, t_start, name, single, keys, store,
                              hits, worker)
    finally:
        if worker is not None:
            worker.close()


def _worker(misses: int, options: BuildOptions):
    """A worker process for a multi-target build (edgec.worker), started now so its imports overlap the model's
    loading and preparation. EDGEC_ISOLATE=0 turns it off; --jobs N keeps its own parallel lowering."""
    if misses < 2 or options.jobs > 1 or os.environ.get("EDGEC_ISOLATE", "1") == "0":
        return None
    from edgec.worker import Worker

    w = Worker()
    w.start()
    return w


def _build_targets(model_path, options, pairs, cli_shapes, out_dir, t_start, name, single, keys, store, hits,
                   worker) -> BuildOutcome:
    model = info = None
    if len(hits) < len(pairs):
        model, renamed = load_model_renamed(model_path)
        info = model_info(model, model_path)
        info.renamed = renamed
    else:
        info = model_info_from_dict({**hits[0]["model"], "path": str(model_path)})

    results: dict[int, ArtifactResult] = {}
    failures: dict[int, TargetFailure] = {}
    quant_of: dict[int, object] = {}  # index -> QuantResult of a quantized target (cross-target table)
    for i, entry in hits.items():
        results[i] = _restore(store, keys[i], entry, out_dir)

    # misses: prepare once per input-shape set and check op support, in this process
    prepared_by_shapes: dict[tuple, PreparedGraph] = {}
    todo: list[tuple[int, PreparedGraph, float]] = []
    for i, (target, profile) in enumerate(pairs):
        if i in hits:
            continue
        try:
            shapes = profile_shapes(profile, cli_shapes)
            key = (tuple((k, tuple(v)) for k, v in sorted(shapes.items())), quantize_key(profile, target.format))
            t0 = time.perf_counter()
            if key not in prepared_by_shapes:
                prepared_by_shapes[key] = prepare(model, shapes, str(model_path), profile, target.format)
            problems = get_backend(target.format).unsupported(prepared_by_shapes[key].model)
            if problems:
                raise UnsupportedOp(target.name, problems)
            todo.append((i, prepared_by_shapes[key], time.perf_counter() - t0))
        except Exception as e:
            if single and not isinstance(e, OSError):
                raise
            if single:  # a full disk is the user's OutputError, not a bug
                raise _as_edgec_error(e, "prepare") from e
            failures[i] = TargetFailure(target.name, profile.name, _as_edgec_error(e, "prepare"))

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
                try:
                    result = _finish(get_backend(target.format), artifact, prepared, profile, out_dir, reference,
                                     options)
                finally:
                    shutil.rmtree(stage, ignore_errors=True)
                result.seconds = {"lower": lower_s, **result.seconds}
            result.seconds = {"prepare": prep_s, **result.seconds}
            results[i] = result
            quant_of[i] = prepared.quant
            if store is not None and result.passed and i in keys:
                store.store(keys[i], result, info, out_dir)
        except Exception as e:
            if single and not isinstance(e, OSError):
                raise
            if single:  # a full disk is the user's OutputError, not a bug
                raise _as_edgec_error(e, "validate") from e
            failures[i] = TargetFailure(target.name, profile.name, _as_edgec_error(e, "validate"))

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


def _cache_keys(model_path: Path, pairs, cli_shapes, name: str, options: BuildOptions) -> dict[int, str]:
    # EDGEC_NO_CACHE=1: a test suite or CI job that must exercise the real build path every time
    if not options.cache or os.environ.get("EDGEC_NO_CACHE", "") not in ("", "0"):
        return {}
    try:
        model_sha = model_digest(model_path)
    except Exception:  # unreadable model: no cache; load_model below reports it properly
        return {}
    opts = {"input_shapes": {k: list(v) for k, v in sorted(cli_shapes.items())}, "validate": options.validate,
            "name": name}
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
    in the worker process, where a native crash fails that target only. Quantized graphs stay in this process:
    their accuracy check keeps per-target outputs in the shared QuantResult for the cross-target table."""
    from edgec.worker import WorkerUnavailable

    for i, prepared, prep_s in todo:
        target, profile = pairs[i]
        if prepared.quant is not None or worker is None:
            out = _lower_guarded(prepared.model, target, profile, name, out_dir, info.sha256, prepared.precision,
                                 prepared.notes)
            yield i, prepared, prep_s, out
            continue
        try:
            if options.validate:
                reference.get(prepared, profile)  # computed once here, shipped with the task
            out = worker.run(target.name, "edgec.api", "_target_task", prepared, target, profile, name, out_dir,
                             info.sha256, reference, options)
        except WorkerUnavailable:  # e.g. a caller whose __main__ a spawned process cannot re-import
            worker = None
            out = _lower_guarded(prepared.model, target, profile, name, out_dir, info.sha256, prepared.precision,
                                 prepared.notes)
        except EdgecError as e:
            out = e
        yield i, prepared, prep_s, out


def _target_task(stage, prepared: PreparedGraph, target: Target, profile: Profile, name: str, out_dir: Path,
                 source_sha: str, reference: _Reference, options: BuildOptions) -> ArtifactResult:
    """In the worker: lower one target and validate it (`stage` reports each step to the parent)."""
    stage("lower")
    lowered = _lower_guarded(prepared.model, target, profile, name, out_dir, source_sha, prepared.precision,
                             prepared.notes)
    if isinstance(lowered, EdgecError):
        raise lowered
    artifact, staging, lower_s = lowered
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
    numerics = latency = None
    t0 = time.perf_counter()
    if options.validate:
        numerics, latency = _validate(backend, artifact, prepared, profile, reference)
    validate_s = time.perf_counter() - t0
    final = out_dir / artifact.path.name
    for extra in artifact.extra_files:
        place(extra, out_dir / extra.name)
    place(artifact.path, final)
    artifact.extra_files = [out_dir / e.name for e in artifact.extra_files]
    return ArtifactResult(
        artifact=artifact, final_path=final, sha256=sha256_path(final), bytes=size_of(final),
        numerics=numerics, latency=latency, seconds={"validate": validate_s},
    )


def _validate(backend, artifact, prepared: PreparedGraph, profile: Profile, reference: _Reference):
    feeds, ref_outputs = reference.get(prepared, profile)
    if all(v.size == 0 for out in ref_outputs for v in out.values()):
        # an empty input the user asked for (--input-shape x=0,...): a comparison of nothing cannot fail, so it
        # is not reported as a pass
        artifact.details["numerics"] = "nothing to compare: every output is empty (a zero-sized input dim)"
        artifact.notes.append("numerics: nothing to compare (every output is empty); latency not measured")
        return None, None
    threads = _threads(profile)
    runner = backend.runner(artifact, threads)
    actual = [runner.run(f) for f in feeds]
    spec = profile.validate_.numerics
    if prepared.quant is not None:  # reduced precision: held-out samples, per-precision thresholds, top-k
        from edgec.quantize.accuracy import evaluate

        artifact.details["quantize"] = prepared.quant.summary(profile, artifact)
        if (note := prepared.quant.speedup_note(profile, artifact)) is not None:
            artifact.notes.append(note)
        numerics = evaluate(prepared.quant, reference.original, runner, spec, threads, keep_as=artifact.target)
    else:
        # the backend may itself reduce precision (CoreML fp16 compute, weight compression): gate on what was built
        gates = thresholds(spec, artifact.precision)
        numerics: NumericsResult = compare(ref_outputs, actual, runner.name, gates["min_cosine"], gates["max_abs"],
                                           gates["min_delta_cosine"])
    latency = latency_mod.measure_latency(runner, artifact, prepared.model, profile, feeds[0], threads)
    return numerics, latency


def check(model_path: Path | str) -> tuple[ModelInfo, dict[str, list[tuple[str, str, str]]]]:
    """Model facts and, per built-in target, the nodes that target cannot take (empty list = all supported)."""
    from edgec.config.loader import all_targets

    model_path = Path(model_path)
    model = load_model(model_path)
    info = model_info(model, model_path)
    support: dict[str, list[tuple[str, str, str]]] = {}
    for target in all_targets():
        try:
            support[target.name] = get_backend(target.format).unsupported(model)
        except EdgecError as e:
            support[target.name] = [("*", "*", str(e))]
    return info, support


def validate_artifact(
    model_path: Path | str, artifact_path: Path | str, profile: str | None = None, input_shapes: list[str] = ()
) -> ArtifactResult:
    """Check an artifact built earlier (or by another tool) against its ONNX model: numerics and latency."""
    from edgec.artifact import Artifact
    from edgec.config.loader import all_targets, load_profile
    from edgec.errors import UsageError
    from edgec.graph.shapes import fix_input_shapes

    model_path, artifact_path = Path(model_path), Path(artifact_path)
    if not artifact_path.exists():
        raise UsageError(f"{artifact_path}: no such artifact. Give the path of a .ort, .tflite or .mlpackage file.")
    target = next((t for t in all_targets() if artifact_path.name.endswith(t.extension)), None)
    if target is None:
        known = ", ".join(t.extension for t in all_targets())
        raise UsageError(f"{artifact_path}: unknown artifact kind; edgec validates {known} files.")
    prof = load_profile(profile or target.default_profile)
    model = load_model(model_path)
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    shapes = fix_input_shapes(fixed, profile_shapes(prof, parse_input_shape_flags(list(input_shapes))), str(model_path))
    prepared = PreparedGraph(model=fixed, shapes=shapes)
    artifact = Artifact(target=target.name, profile=prof.name, format=target.format, path=artifact_path,
                        precision="unknown")
    t0 = time.perf_counter()
    numerics, latency = _validate(get_backend(target.format), artifact, prepared, prof, _Reference(model))
    return ArtifactResult(
        artifact=artifact, final_path=artifact_path, sha256=sha256_path(artifact_path), bytes=size_of(artifact_path),
        numerics=numerics, latency=latency, seconds={"validate": time.perf_counter() - t0},
    )
