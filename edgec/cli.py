"""The `edgec` command line. It parses, calls edgec.api, and prints; errors become one paragraph and an exit code."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgec import __version__
from edgec.errors import EdgecError, UnsupportedOp, UsageError, ValidationFailed

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="edgec: compile an ONNX model for iOS (CoreML), Android (TFLite/LiteRT) and ONNX Runtime Mobile, "
    "and check its numerics and latency.",
    pretty_exceptions_enable=False,
)
# piped output (CI logs) gets a wide console so tables do not fold into unreadable columns
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
INTERNAL_ERROR = 70

# options every command shares (declared once; commands take them as defaults). Every command that prepares a
# model (build, check, validate, integrate) takes PROFILE and INPUT_SHAPE; an --input-value NAME=VALUE option
# (branch seq) belongs here too, next to INPUT_SHAPE, and goes to the same commands.
DEBUG = typer.Option(False, "--debug", help="Show tracebacks.")
PROFILE = typer.Option(None, "--profile", "-p", help="A built-in profile name or a profile YAML path.")
INPUT_SHAPE = typer.Option([], "--input-shape", help="Fix an input's shape: NAME=D0,D1,... (repeatable). A dim "
                           "MIN..MAX (e.g. input_ids=1,1..512) is a range: the axis stays dynamic where the target "
                           "can, checks run at its max, validation at min, midpoint and max.")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so every cleanup runs as for Ctrl-C."""


def _run(fn: Callable[[], int | None], debug: bool) -> None:
    """Run a command body: EdgecError -> message + its exit code; a bug -> short message (traceback with --debug)."""
    import signal

    def terminated(signum, frame):  # SIGTERM unwinds like Ctrl-C (staging folders removed), then exits 143
        raise _Terminated()

    with contextlib.suppress(ValueError):  # not the main thread (an embedding app): leave SIGTERM alone
        signal.signal(signal.SIGTERM, terminated)
    try:
        code = fn() or 0
    except EdgecError as e:
        if debug:
            if getattr(e, "worker_traceback", None):  # the bug happened in the worker process: its traceback
                err.print(e.worker_traceback, highlight=False, markup=False)
            raise
        err.print(f"[bold red]edgec: {e.kind}:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt as e:
        term = isinstance(e, _Terminated)
        err.print(f"edgec: {'terminated' if term else 'interrupted'}; the output folder holds one build's complete "
                  f"set of files, never a half-written one.")
        raise typer.Exit(143 if term else 130) from None
    except Exception as e:  # a bug in edgec or a dependency: never a raw traceback unless asked
        if debug:
            raise
        err.print(
            f"[bold red]edgec: internal error:[/] {type(e).__name__}: {e}. This is a bug in edgec or one of its "
            f"dependencies; run again with --debug for the traceback and report it.",
            highlight=False, soft_wrap=True,
        )
        raise typer.Exit(INTERNAL_ERROR) from None
    raise typer.Exit(code)


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# shared by the verbs that prepare a graph: the input becomes a constant before simplification (graph/values.py)
INPUT_VALUE_OPTION = typer.Option(
    [], "--input-value", help="Fix an input to a constant before simplification: NAME=VALUE or NAME=V0,V1,... "
    "(repeatable; dtype from the model). The artifact no longer has that input; validation feeds the value to the "
    "original model. E.g. --input-value sr=16000 folds a sample-rate If.")


@app.command()
def build(
    model: Optional[Path] = typer.Argument(None, help="The .onnx model to compile.", show_default=False),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="ios, android, ort-mobile, or all."),
    profile: Optional[str] = PROFILE,
    out_dir: Path = typer.Option(Path("dist"), "--out", "-o", help="Output folder."),
    input_shape: list[str] = INPUT_SHAPE,
    input_value: list[str] = INPUT_VALUE_OPTION,
    sample: Optional[str] = typer.Option(None, "--sample", help="Build a bundled sample model instead of MODEL: squeezenet (and the other ONNX light-zoo CNNs), text_encoder, streaming_audio."),
    no_validate: bool = typer.Option(False, "--no-validate", help="Skip numerics and latency checks."),
    quantize: Optional[str] = typer.Option(None, "--quantize", "-q", help="none, fp16, int8, int8-dynamic or int8-weights (overrides the profile)."),
    calibration: Optional[str] = typer.Option(None, "--calibration", help="Calibration data: a folder of .npy/.npz/images, or 'random' (accuracy unmeasured)."),
    validation_data: Optional[str] = typer.Option(None, "--validation-data", help="Validate on these inputs: a folder of .npy/.npz/images (as --calibration); every numerics check, and a quantized build's accuracy gate (instead of held-out calibration files or random inputs), reads it."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON instead of a table."),
    latency: Optional[str] = typer.Option(None, "--latency", help="Latency mode: host, emulate, estimate, device or off (overrides the profile)."),
    device: Optional[str] = typer.Option(None, "--device", help="Device for --latency device: ssh://user@host[:port], adb:SERIAL[?benchmark=PATH] or coreml."),
    budget_ms: Optional[float] = typer.Option(None, "--budget-ms", help="Latency budget in ms (median or p90, as the profile says); a miss fails the build."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write JUnit XML (one test case per check) here."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild even if the build cache has this exact build."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Lower up to N targets at once in worker processes (pays off for big models with idle cores)."),
    emulator: Optional[str] = typer.Option(None, "--emulator", help="qemu[:CORE]: also check android/ort-mobile numerics with the real aarch64 runtime under QEMU (int8: that verdict gates)."),
    debug: bool = DEBUG,
) -> None:
    """Compile MODEL for one target or all, validate it, and write artifacts, manifest.json, report.md and report.html."""
    from edgec import api

    def body() -> int:
        model_path, name = _model_argument(model, sample)
        options = api.BuildOptions(
            target=target, profile=profile, out_dir=out_dir, input_shapes=input_shape, input_values=input_value,
            latency=latency, device=device, budget_ms=budget_ms,
            validate=not no_validate, model_name=name, quantize=quantize, calibration=calibration, cache=not no_cache, junit=junit, jobs=jobs,
            emulator=emulator,
            validation_data=validation_data, worker_start="fork",
        )
        try:
            with _progress() as options.progress, _warnings_as_lines():
                outcome = api.build(model_path, options)
        except EdgecError as e:
            if junit:  # CI still gets a red test case saying why, though the build wrote nothing else
                from edgec.package.junit import failed_build_data, write_junit

                try:
                    write_junit(failed_build_data(model_path, target or "-", profile or "-", e.kind, str(e)), junit)
                except OSError:
                    pass  # the build's own error is the one to report
            raise
        if as_json:
            _print_json(json.loads(outcome.result.manifest_path.read_text()))
        else:
            _print_build(outcome)
        _print_cache(outcome)
        if outcome.failures:
            for f in outcome.failures:
                err.print(f"[bold red]edgec: {f.target}: {f.error.kind}:[/] {f.error}", highlight=False, soft_wrap=True)
            return outcome.failures[0].error.exit_code
        if not outcome.result.passed:
            failed = [a for a in outcome.result.artifacts if not a.passed]
            reasons = "; ".join(
                f"{a.artifact.target}: " + " ".join(
                    m for m in ((a.numerics.message if a.numerics and not a.numerics.passed else ""),
                                (f"ARM: {a.numerics_arm.message}" if a.numerics_arm and not a.numerics_arm.passed
                                 else ""),
                                (a.latency.message if a.latency and a.latency.passed is False else "")) if m
                )
                for a in failed
            )
            err.print(
                f"[bold red]edgec: validation failed:[/] {reasons}. The artifacts and report are in "
                f"{outcome.result.out_dir}; see report.md.", highlight=False, soft_wrap=True,
            )
            return ValidationFailed.exit_code
        return 0

    _run(body, debug)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@contextlib.contextmanager
def _progress():
    """A progress callback for api.build: each stage as it starts, on stderr (stdout stays the result/JSON).
    A terminal gets a spinner naming the running stage above the finished ones; a pipe (CI logs) gets one
    timestamped plain line per stage."""
    start = time.perf_counter()

    def line(stage: str, target: str | None, detail: str) -> str:
        return f"{stage}" + (f" {target}" if target else "") + (f": {detail}" if detail else "")

    if not err.is_terminal:
        def plain(stage: str, target: str | None = None, detail: str = "") -> None:
            stamp = time.strftime("%H:%M:%S")
            err.print(f"{stamp} edgec [{time.perf_counter() - start:6.1f}s] {line(stage, target, detail)}",
                      markup=False, highlight=False, soft_wrap=True)

        yield plain
        return
    with err.status("building...", spinner="dots") as status:
        def live(stage: str, target: str | None = None, detail: str = "") -> None:
            err.print(f"[dim]{time.perf_counter() - start:6.1f}s[/] {escape(line(stage, target, detail))}",
                      highlight=False, soft_wrap=True)
            status.update(f"{escape(line(stage, target, detail))}...")

        yield live


@contextlib.contextmanager
def _warnings_as_lines():
    """Python warnings raised during a build (e.g. random calibration data) as one 'edgec: warning:' line each,
    not file:line plus source code."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # keeps the filters in force (ResourceWarning off)
        try:
            yield
        finally:
            for w in caught:
                err.print(f"[yellow]edgec: warning:[/] {w.message}", highlight=False, soft_wrap=True)


def _model_argument(model: Optional[Path], sample: Optional[str]) -> tuple[Path, Optional[str]]:
    if sample and model:
        raise UsageError("Give either MODEL or --sample, not both.")
    if sample:
        from edgec import samples

        return samples.sample_path(sample), sample
    if model is None:
        raise UsageError("Missing MODEL: `edgec build path/to/model.onnx` (or `--sample squeezenet`).")
    return model, None


def _print_cache(outcome) -> None:
    """Cache hits and the build time go to stderr, so `--json` stdout stays the manifest."""
    hits = ", ".join(f"{t}/{p}" for t, p in outcome.cache_hits)
    if hits:
        built = len(outcome.result.artifacts) + len(outcome.failures) - len(outcome.cache_hits)
        others = f"; {built} other build(s) ran" if built else ""
        err.print(f"edgec: cache hit for {hits} (model, profile, target and versions unchanged{others}); "
                  f"took {outcome.seconds:.2f} s. Use --no-cache to rebuild.", highlight=False, soft_wrap=True)
    else:
        err.print(f"edgec: built in {outcome.seconds:.2f} s.", highlight=False)


def _print_build(outcome) -> None:
    r = outcome.result
    table = Table(title=f"edgec build: {r.model.path.name}", title_justify="left")
    for col in ("target", "profile", "artifact", "size", "numerics", "latency", "result"):
        table.add_column(col)
    from edgec.package.report import _latency_cell, _numerics_cell

    for a in r.artifacts:
        table.add_row(
            a.artifact.target, a.artifact.profile, str(a.final_path), f"{a.bytes / 1e6:.2f} MB",
            _numerics_cell(a), _latency_cell(a), "[green]pass[/]" if a.passed else "[red]FAIL[/]",
        )
    for f in outcome.failures:
        table.add_row(f.target, f.profile, "-", "-", "-", "-", f"[red]{f.error.kind}[/]")
    out.print(table)
    out.print(f"manifest: {r.manifest_path}\nreport:   {r.report_path}", highlight=False)
    if getattr(outcome, "html_path", None):
        out.print(f"html:     {outcome.html_path}", highlight=False)
    if getattr(outcome, "junit_path", None):
        out.print(f"junit:    {outcome.junit_path}", highlight=False)


@app.command()
def check(
    model: Path = typer.Argument(..., help="The .onnx model to inspect."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Check only this target (exit 6 if it cannot "
                                                                       "take the model); default: every target."),
    profile: Optional[str] = PROFILE,
    input_shape: list[str] = INPUT_SHAPE,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    debug: bool = DEBUG,
) -> None:
    """Opset, inputs/outputs with dynamic dims, op histogram, size, and what each target supports of the graph a
    build would lower (same preparation: --input-shape, onnxsim, graph passes)."""
    from edgec import api

    def body() -> int:
        r = api.check(model, input_shape, profile, target)
        info, support = r.info, r.support
        refused = UnsupportedOp.exit_code if target and any(support.values()) else 0
        if as_json:
            data = asdict(info)
            data["support"] = {t: [{"op": o, "node": n, "why": w} for o, n, w in p] for t, p in support.items()}
            data["dependents"], data["notes"] = r.dependents, r.notes
            _print_json(data)
            return refused
        out.print(f"[bold]{escape(str(info.path))}[/]  {info.bytes / 1e6:.2f} MB, sha256 {info.sha256[:16]}",
                  highlight=False)
        out.print(escape(f"opset {info.opset}, IR version {info.ir_version}, producer '{info.producer}', "
                         f"{info.nodes} nodes, {info.parameters:,} parameters"), highlight=False)
        io = Table(title="inputs / outputs", title_justify="left")
        for col in ("kind", "name", "dtype", "shape"):
            io.add_column(col)
        for kind, values in (("input", info.inputs), ("output", info.outputs)):
            for v in values:
                shape = "[" + ", ".join(str(d) for d in v["shape"]) + "]"  # named dims are not Rich markup
                dynamic = any(not isinstance(d, int) for d in v["shape"])
                io.add_row(kind, escape(v["name"]), v["dtype"], escape(shape) + (" (dynamic)" if dynamic else ""))
        out.print(io)
        ops = Table(title="op histogram", title_justify="left")
        ops.add_column("op")
        ops.add_column("count", justify="right")
        for op, n in info.op_histogram.items():
            ops.add_row(escape(op), str(n))
        out.print(ops)
        sup = Table(title="target support (the prepared graph)", title_justify="left")
        for col in ("target", "supported", "unsupported nodes (root causes first)"):
            sup.add_column(col)
        for t, problems in support.items():
            roots = problems[:len(problems) - r.dependents[t]]
            detail = "; ".join(f"{o} '{n}': {w}" for o, n, w in roots[:10])
            if len(roots) > 10:
                detail += f"; ... {len(roots) - 10} more"
            if r.dependents[t]:
                detail += f"; {r.dependents[t]} more depend on them"
            sup.add_row(t, "[green]yes[/]" if not problems else "[red]no[/]", escape(detail))
        out.print(sup)
        for note in r.notes:
            err.print(f"[yellow]edgec: note:[/] {escape(note)}", highlight=False, soft_wrap=True)
        return refused

    _run(body, debug)


profiles_app = typer.Typer(help="List the built-in device profiles; `profiles detect` measures this machine.")
app.add_typer(profiles_app, name="profiles")


@profiles_app.callback(invoke_without_command=True)
def profiles(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    debug: bool = DEBUG,
) -> None:
    """List the built-in device profiles (`edgec profiles detect` measures this machine)."""
    from edgec.config.loader import all_profiles

    if ctx.invoked_subcommand is not None:
        return

    def body() -> int:
        items = all_profiles()
        if as_json:
            _print_json([p.model_dump(by_alias=True) for p in items])
            return 0
        table = Table(title="built-in profiles", title_justify="left")
        for col in ("name", "target", "cpu", "peak fp32 GFLOP/s", "memory GB/s", "threads", "latency", "description"):
            table.add_column(col)
        for p in items:
            hw = p.hardware
            table.add_row(
                p.name, p.target, f"{hw.cpu.cores} cores", f"{hw.cpu.peak_gflops_fp32:g}",
                f"{hw.memory_bandwidth_gbps:g}", str(p.runtime.threads), p.validate_.latency.mode, p.description,
            )
        out.print(table)
        return 0

    _run(body, debug)


@profiles_app.command("detect")
def profiles_detect(
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the host profile YAML to this file (a profile you can pass with --profile or validate.latency.host_profile)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads to measure with (default: all cores)."),
    force: bool = typer.Option(False, "--force", help="Measure again even if this machine's calibration is cached."),
    debug: bool = DEBUG,
) -> None:
    """Measure this machine with ONNX Runtime (matmul/conv fp32 and int8, memory bandwidth, per-op cost) into the
    calibration cache, keyed by CPU fingerprint; builds measure it themselves on first use, this re-measures."""
    from edgec.config.loader import load_profile
    from edgec.validate.hostcache import calibrated

    def body() -> int:
        import os
        import shutil

        with err.status("measuring this machine...", spinner="dots") if err.is_terminal else _null():
            entry = calibrated(force=force, threads=threads)
        profile = load_profile(str(entry.profile_path))  # what we cached must load as a profile
        if out_file:
            out_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(entry.profile_path, out_file)
        hw = profile.hardware
        load = f" (load average {os.getloadavg()[0]:.2f} while measuring)" if entry.fresh else ""
        out.print(f"host profile {entry.profile_path}{f' (copied to {out_file})' if out_file else ''}: "
                  f"{hw.cpu.cores} cores, {hw.cpu.peak_gflops_fp32} GFLOP/s fp32, {hw.cpu.peak_gops_int8} GOP/s int8, "
                  f"{hw.memory_bandwidth_gbps} GB/s; {entry.describe()}{load}", highlight=False, soft_wrap=True)
        return 0

    _run(body, debug)


@app.command()
def targets(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ops: bool = typer.Option(False, "--ops", help="Print each target's op-support table (from the code)."),
    debug: bool = DEBUG,
) -> None:
    """List the built-in deployment targets (and, with --ops, the ONNX ops each one lowers)."""
    from edgec.config.loader import all_targets
    from edgec.lower.backend import target_ops

    def body() -> int:
        items = all_targets()
        support = {}
        if ops:
            for t in items:
                try:
                    support[t.name] = target_ops(t)
                except EdgecError as e:
                    support[t.name] = {"(unavailable)": str(e)}
        if as_json:
            data = [t.model_dump() for t in items]
            if ops:
                for d in data:
                    d["ops"] = support[d["name"]]
            _print_json(data)
            return 0
        table = Table(title="built-in targets", title_justify="left")
        for col in ("name", "format", "runtime", "artifact", "precisions", "layout", "default profile"):
            table.add_column(col)
        for t in items:
            table.add_row(t.name, t.format, f"{t.runtime} {t.runtime_version}".strip(), f"*{t.extension}",
                          ", ".join(t.precisions), t.layout, t.default_profile)
        out.print(table)
        if support:
            grid = Table(title="ONNX ops each target lowers (conditions: what its lowering checks)",
                         title_justify="left")
            grid.add_column("op")
            for name in support:
                grid.add_column(name, justify="center")
            grid.add_column("conditions")
            for op in sorted(set().union(*support.values())):
                notes = [f"{name}: {support[name][op]}" for name in support if support[name].get(op)]
                grid.add_row(escape(op), *("yes" if op in support[name] else "-" for name in support),
                             escape("; ".join(notes)))
            out.print(grid)
        return 0

    _run(body, debug)


@app.command()
def validate(
    model: Path = typer.Argument(..., help="The original .onnx model (the reference)."),
    artifact: Path = typer.Argument(..., help="The .ort / .tflite / .mlpackage to check."),
    profile: Optional[str] = PROFILE,
    input_shape: list[str] = INPUT_SHAPE,
    input_value: list[str] = INPUT_VALUE_OPTION,
    validation_data: Optional[str] = typer.Option(None, "--validation-data", help="Validate on these inputs: a folder of .npy/.npz/images."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Write this check's validation.json and latency table here (default: write nothing)."),
    layers: bool = typer.Option(False, "--layers", help="Compare every intermediate tensor and name the first divergent layer."),
    debug: bool = DEBUG,
) -> None:
    """Check an existing artifact against its ONNX model: numerics per output, and latency."""
    from edgec import api
    from edgec.package.report import _latency_cell, _numerics_cell

    def body() -> int:
        r = api.validate_artifact(model, artifact, profile, input_shape, input_value, validation_data=validation_data,
                                  out_dir=out_dir, layers=layers)
        table = Table(title=f"edgec validate: {artifact.name} against {model.name}", title_justify="left")
        for col in ("output", "max-abs", "cosine", "cosine of input difference"):
            table.add_column(col)
        for name, m in r.numerics.outputs.items():
            delta = "-" if m.delta_cosine is None else f"{m.delta_cosine:.6f}"
            table.add_row(name, f"{m.max_abs:.3g}", f"{m.cosine:.6f}", delta)
        out.print(table)
        out.print(f"numerics: {_numerics_cell(r)}\nlatency:  {_latency_cell(r)}", highlight=False)
        if r.numerics.data:
            out.print(f"inputs:   {r.numerics.data}", highlight=False, soft_wrap=True)
        if layers:
            out.print(f"layers:   {r.artifact.details['layers']}", highlight=False, soft_wrap=True)
        if not r.passed:
            msgs = [m for m in (r.numerics.message, r.latency.message if r.latency else "") if m]
            err.print(f"[bold red]edgec: validation failed:[/] {'; '.join(msgs)}.", highlight=False, soft_wrap=True)
            return ValidationFailed.exit_code
        return 0

    _run(body, debug)


@app.command()
def doctor() -> None:
    """What this machine can build and run: runtimes, versions, and tools for device runs."""
    import platform
    import shutil as sh
    from importlib import util

    from edgec.package.manifest import dependency_versions

    table = Table(title="edgec doctor", title_justify="left")
    for col in ("component", "status", "what it is for"):
        table.add_column(col)
    table.add_row("edgec", __version__, f"Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    purposes = {
        "onnx": "loading and checking models", "onnxruntime": "reference numerics; ORT Mobile artifacts",
        "onnxsim": "graph simplification", "coremltools": "iOS (.mlpackage) lowering",
        "ai-edge-litert": "running .tflite artifacts (LiteRT)", "flatbuffers": "writing .tflite files",
        "numpy": "everything",
    }
    for name, ver in dependency_versions().items():
        table.add_row(name, ver, purposes.get(name, ""))
    coreml_predict = "available" if platform.system() == "Darwin" else "not on this OS: .mlpackage numerics run in edgec's MIL interpreter"
    table.add_row("CoreML predict", coreml_predict, "real CoreML runs (macOS only)")
    if util.find_spec("torch") is not None:
        table.add_row("torch", "[yellow]installed[/]", "not needed by edgec; it slows `import coremltools` ~10x")
    for tool, purpose in (("adb", "latency on attached Android phones"), ("ssh", "latency on Linux boards"),
                          ("chromium", "rendering report.html screenshots")):
        table.add_row(tool, sh.which(tool) or "not found", purpose)
    from edgec.runtimes.emulator.setup import status_line

    table.add_row("ARM emulator", status_line(), "--emulator qemu: the aarch64 runtimes under QEMU user-mode")
    from edgec.runtimes.emulator import mca

    table.add_row("llvm-mca", mca.status_line(), "--latency emulate: pipeline simulation of the hot loops")
    out.print(table)


emulator_app = typer.Typer(help="The ARM emulator (QEMU user-mode) that --emulator qemu[:CORE] runs artifacts in.")
app.add_typer(emulator_app, name="emulator")


@emulator_app.command("setup")
def emulator_setup(
    core: list[str] = typer.Option([], "--core", help="Core(s) to prepare (default: every core QEMU names)."),
    debug: bool = DEBUG,
) -> None:
    """Build the arm64 Debian files, the aarch64 runtime wheels and each core's /proc/cpuinfo into the edgec
    cache (needs the Debian packages qemu-user and mmdebstrap; about 40 s and 240 MB once, instant after)."""
    from edgec.runtimes.emulator.cores import CORES
    from edgec.runtimes.emulator.setup import ensure, status_line

    def body() -> int:
        import time as _time

        t0 = _time.perf_counter()
        for c in core or list(CORES):
            ensure(c, log=lambda m: err.print(f"edgec: {m}", highlight=False))
        out.print(f"ARM emulator ready in {_time.perf_counter() - t0:.1f} s: {status_line()}", highlight=False,
                  soft_wrap=True)
        from edgec.runtimes.emulator import mca

        out.print(f"llvm-mca (--latency emulate's pipeline simulation): {mca.status_line()}", highlight=False,
                  soft_wrap=True)
        return 0

    _run(body, debug)


@app.command()
def version() -> None:
    """Print edgec's version and the versions of the runtimes it uses."""
    from edgec.package.manifest import dependency_versions

    out.print(f"edgec {__version__}", highlight=False)
    for k, v in dependency_versions().items():
        out.print(f"  {k} {v}", highlight=False)


@app.command()
def matrix(
    profiles: Optional[str] = typer.Option(None, "--profiles", help="Comma-separated profile names or YAML paths."),
    targets: Optional[str] = typer.Option(None, "--targets", help="Comma-separated targets (default: every target)."),
    as_json: bool = typer.Option(False, "--json", help="One line of JSON for GitHub Actions' strategy.matrix."),
    debug: bool = DEBUG,
) -> None:
    """Print the (target, profile) build jobs as a GitHub Actions matrix include-list."""
    from edgec.integrate.matrix import matrix as make_matrix

    def body() -> int:
        m = make_matrix(profiles, targets)
        if as_json:
            sys.stdout.write(json.dumps(m, separators=(",", ":")) + "\n")  # one line: fits $GITHUB_OUTPUT
            return 0
        table = Table(title="edgec matrix", title_justify="left")
        for col in ("name", "target", "profile", "out"):
            table.add_column(col)
        for e in m["include"]:
            table.add_row(e["name"], e["target"], e["profile"], e["out"])
        out.print(table)
        return 0

    _run(body, debug)


@app.command()
def merge(
    folders: list[Path] = typer.Argument(..., help="Output folders of the per-job builds (e.g. dist-*/)."),
    out_dir: Path = typer.Option(Path("dist"), "--out", "-o", help="Folder for the merged artifacts and reports."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write JUnit XML (one test case per check) here."),
    as_json: bool = typer.Option(False, "--json", help="Print the merged manifest as JSON."),
    debug: bool = DEBUG,
) -> None:
    """Merge per-job `edgec build` outputs into one folder with one manifest, report.md and report.html."""
    from edgec.integrate.merge import merge as do_merge

    def body() -> int:
        m = do_merge(folders, out_dir, junit)
        if as_json:
            _print_json(json.loads(m.result.manifest_path.read_text()))
        else:
            out.print(f"merged {len(m.result.artifacts)} artifact(s) and {len(m.errors)} failed target(s) from "
                      f"{len(folders)} folder(s)\nmanifest: {m.result.manifest_path}\nreport:   "
                      f"{m.result.report_path}\nhtml:     {m.html_path}", highlight=False)
        for e in m.errors:
            err.print(f"[bold red]edgec: {e['target']}: {e['kind']}:[/] {e['message']}", highlight=False, soft_wrap=True)
        if not m.ok:
            failed = [f"{a.artifact.target}/{a.artifact.profile}" for a in m.result.artifacts if not a.passed]
            failed += [f"{e['target']}/{e['profile']}" for e in m.errors]
            err.print(f"[bold red]edgec: validation failed:[/] {', '.join(failed)}; see {m.result.report_path}.",
                      highlight=False, soft_wrap=True)
            return ValidationFailed.exit_code
        return 0

    _run(body, debug)


integrate_app = typer.Typer(help="Write build-system glue: Xcode build phase, Gradle task, GitHub Actions workflow.",
                            no_args_is_help=True)
app.add_typer(integrate_app, name="integrate")


def _print_written(paths) -> None:
    for p in paths:
        out.print(f"wrote {p}", highlight=False)


@integrate_app.command("xcode")
def integrate_xcode(
    model: str = typer.Argument(..., help="The ONNX model, relative to the Xcode project folder ($SRCROOT)."),
    profile: str = typer.Option("iphone-15-pro", "--profile", help="Profile name, or a YAML path relative to $SRCROOT."),
    input_shape: list[str] = INPUT_SHAPE,
    dest: str = typer.Option("Models", "--dest", help="Folder (relative to $SRCROOT) the .mlpackage is written to."),
    out_dir: Path = typer.Option(Path("."), "--out", "-o", help="Where to write the script and file lists."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    debug: bool = DEBUG,
) -> None:
    """Write an Xcode Run Script build phase (+ input/output .xcfilelist) that builds the .mlpackage (with the
    given --input-shape flags)."""
    from edgec.integrate import templates

    _run(lambda: _print_written(templates.xcode(model, out_dir, profile, dest, force, input_shape)), debug)


@integrate_app.command("gradle")
def integrate_gradle(
    model: str = typer.Argument(..., help="The ONNX model, relative to the app module folder."),
    profile: str = typer.Option("pixel-8", "--profile", help="Profile name, or a YAML path relative to the module."),
    out_dir: Path = typer.Option(Path("."), "--out", "-o", help="Where to write edgec.gradle.kts."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    debug: bool = DEBUG,
) -> None:
    """Write a Gradle Kotlin DSL task that builds the .tflite before preBuild into the app's assets."""
    from edgec.integrate import templates

    _run(lambda: _print_written(templates.gradle(model, out_dir, profile, force)), debug)


@integrate_app.command("github-actions")
def integrate_github_actions(
    model: str = typer.Argument(..., help="The ONNX model, relative to the repository root."),
    profiles: str = typer.Option("iphone-15-pro,pixel-8,raspberry-pi-5", "--profiles", help="Comma-separated profiles."),
    install: str = typer.Option("pip install edgec", "--install", help="Shell command that installs edgec in CI."),
    out_dir: Path = typer.Option(Path(".github/workflows"), "--out", "-o", help="Where to write edgec.yml."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    debug: bool = DEBUG,
) -> None:
    """Write a GitHub Actions workflow: matrix of builds, merge, report.md as the job summary, dist/ uploaded."""
    from edgec.integrate import templates

    _run(lambda: _print_written(templates.github_actions(model, out_dir, profiles, install, force)), debug)


def main() -> None:
    try:
        app()
    finally:
        _outcome_decided()


def _outcome_decided() -> None:
    """The command has finished (its files committed or rolled back, its message printed): a Ctrl-C or SIGTERM
    from here on cannot change the outcome, so it is ignored rather than killing the interpreter mid-exit (Python
    restores the default handlers during finalization, where a signal would end the process with -SIGINT instead
    of the command's exit code)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    main()
