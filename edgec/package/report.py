"""report.md: a human summary that fits in a pull-request comment."""

from __future__ import annotations

from pathlib import Path

from edgec.artifact import ArtifactResult, BuildResult
from edgec.package.files import write_text_atomic


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _numerics_cell(a: ArtifactResult) -> str:
    if a.numerics is None:
        return a.artifact.details.get("numerics", "not run")
    cell = _verdict(a.numerics)
    if a.numerics_arm is not None:  # --emulator: host-kernel and ARM-kernel verdicts side by side
        cell += f"; ARM: {_verdict(a.numerics_arm)}"
    return cell


def _verdict(n) -> str:
    worst = min((m.cosine for m in n.outputs.values()), default=1.0)
    err = max((m.max_abs for m in n.outputs.values()), default=0.0)
    return f"{'pass' if n.passed else 'FAIL'}: cos {worst:.6f}, max-abs {err:.3g} ({n.ran_on})"


def _emulator_section(a: ArtifactResult) -> list[str]:
    """The ARM-kernel run next to the host-kernel one, per output."""
    n, h, d = a.numerics_arm, a.numerics, a.artifact.details.get("emulator", {})
    lines = [f"ARM kernels ({n.ran_on}, {n.samples} input(s), {d.get('seconds', 0):.1f} s under emulation; "
             f"the verdict comes from the {d.get('gates', 'ARM kernels')}):", "",
             "| output | host max-abs | host cosine | ARM max-abs | ARM cosine | ARM vs host kernels, same inputs |",
             "|---|---|---|---|---|---|"]
    for name, om in n.outputs.items():
        hm = h.outputs.get(name) if h is not None else None
        host = f"{hm.max_abs:.3g} | {hm.cosine:.6f}" if hm is not None else "- | -"
        v = d.get("vs_host", {}).get(name)
        vs = "-" if v is None else ("identical" if v["identical"] else
                                    f"cos {v['cosine']:.7f}, max-abs {v['max_abs']:.3g}")
        lines.append(f"| {name} | {host} | {om.max_abs:.3g} | {om.cosine:.6f} | {vs} |")
    if n.message:
        lines += ["", f"ARM numerics: {n.message}"]
    return lines + [""]


def _latency_cell(a: ArtifactResult) -> str:
    lat = a.latency
    if lat is None or lat.mode == "off":
        return "off"
    if lat.median_ms is None:
        return f"{lat.mode}: {lat.message or 'n/a'}"
    budget = f" / budget {lat.budget_ms:g} ms" if lat.budget_ms else " / no budget set"
    mark = "" if lat.passed is None else (" pass" if lat.passed else " FAIL")
    noisy = " (noisy)" if lat.noisy else ""
    if lat.mode == "estimate":  # one number, no distribution
        return f"estimate: {lat.median_ms:.2f} ms (roofline){budget}{mark}"
    host = ""
    if lat.mode == "emulate" and lat.details.get("host_median_ms") is not None:
        host = f" (host {lat.details['host_median_ms']:.2f} ms x {lat.details.get('scale', 1):.2f})"
    return f"{lat.mode}: {lat.median_ms:.2f} ms median, p90 {lat.p90_ms:.2f}{host}{budget}{mark}{noisy}"


def _latency_section(a: ArtifactResult) -> list[str]:
    """Mode, numbers, how they were obtained, and the estimator's slowest ops."""
    lat = a.latency
    d = lat.details or {}
    lines = [f"Latency: {_latency_cell(a)}" + (f", {lat.runs} runs" if lat.runs else ""), ""]
    if d.get("method"):
        lines += [f"- method: {d['method']}"]
    if lat.mode == "emulate" and d.get("instructions"):  # --emulator: the instruction model
        lines += ["- instructions per invoke: " + ", ".join(f"{k} {v:,}" for k, v in d["instructions"].items())]
        if d.get("ops"):  # .ort: per op, ONNX Runtime's profiler marking the boundaries
            lines += [f"- {d['ops_note']}:", "", "| op | type | instructions | FMLA | SDOT/UDOT | cycles | bound | ms |",
                      "|---|---|---|---|---|---|---|---|"]
            lines += [f"| {o['name']} | {o['op_type']} | {o['instructions']:,} | {o['fmla']:,} | {o['sdot_udot']:,} | "
                      f"{o['cycles']:,} | {o['bound']} | {o['ms']:.3f} |" for o in d["ops"]]
            lines += [""]
    elif lat.mode == "emulate":
        lines += [f"- host ({lat.runtime}, {d.get('host_threads')} threads): median {d.get('host_median_ms'):.2f} ms, "
                  f"p90 {d.get('host_p90_ms'):.2f} ms; scaled x {d.get('scale'):.3f} to {a.artifact.profile}"]
    if d.get("device"):
        lines += [f"- device: {d['device']}"]
    for note in d.get("notes", []):
        lines += [f"- {note}"]
    if lat.message:
        lines += [f"- {lat.message}"]
    est = d.get("estimate")
    if est:
        lines += [f"- roofline on {est['profile']} ({est['unit']}, {est['threads']} threads): {est['total_ms']:.2f} ms, "
                  f"{est['gflop']:.3f} GFLOP, {est['compute_share']:.0%} of busy time compute-bound; peak activations "
                  f"{est['peak_activation_mb']:.1f} MB, weights {est['weight_mb']:.1f} MB"
                  + (f"; every op in `{d['table']}`" if d.get("table") else "")]
        if est.get("top_ops"):
            lines += ["", "| op | type | est. ms | GFLOP | MB moved | bound |", "|---|---|---|---|---|---|"]
            lines += [f"| {o['name']} | {o['op_type']} | {o['ms']:.3f} | {o['gflop']:.4f} | {o['mbytes']:.2f} | "
                      f"{o['bound']}{' (fused)' if o['fused'] else ''} |" for o in est["top_ops"]]
    return lines + [""]


def pipeline_text(runs: list[dict]) -> str:
    """The stages that prepared the graph, in order: name, rewrites, nodes before -> after."""
    return ", ".join(f"{r['pass']} ({r['rewrites']}: {r['nodes_before']} -> {r['nodes_after']} nodes)" for r in runs)


def render(result: BuildResult, failures: list[tuple[str, str, Exception]] = ()) -> str:
    """failures: (target, profile, error) of targets that produced no artifact (`--target all`, `edgec merge`)."""
    m = result.model
    lines = [
        f"# edgec build: {m.path.name}",
        "",
        f"Model: `{m.path.name}` - opset {m.opset}, {m.nodes} nodes, {m.parameters:,} parameters, "
        f"{_mb(m.bytes)}, sha256 `{m.sha256[:16]}`",
        "",
        f"**Result: {'PASSED' if result.passed and not failures else 'FAILED'}**",
        "",
        "| target | profile | artifact | size | precision | numerics | latency | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in result.artifacts:
        rel = a.final_path.relative_to(result.out_dir).as_posix()
        lines.append(
            f"| {a.artifact.target} | {a.artifact.profile} | `{rel}` | {_mb(a.bytes)} | {a.artifact.precision} | "
            f"{_numerics_cell(a)} | {_latency_cell(a)} | {'pass' if a.passed else 'FAIL'} |"
        )
    for t, p, e in failures:
        lines.append(f"| {t} | {p} | - | - | - | - | - | {getattr(e, 'kind', 'error')} |")
    if failures:
        lines += ["", "## Targets that failed to build", ""]
        # cut long messages (an op list) so the report still fits in a PR comment; manifest.json has them whole
        lines += [f"- **{t}** ({p}): {getattr(e, 'kind', 'error')}: "
                  f"{(str(e)[:600] + ' ...') if len(str(e)) > 600 else str(e)}" for t, p, e in failures]
    if result.cross_target:
        from edgec.quantize.crosstarget import markdown

        lines += markdown(result.cross_target)
    for a in result.artifacts:
        lines += ["", f"## {a.artifact.target} ({a.artifact.format})", ""]
        if a.numerics is not None:
            topk = any(om.top1 is not None for om in a.numerics.outputs.values())
            if a.numerics.data:
                lines += [f"Accuracy vs the fp32 ONNX model on {a.numerics.data}:", ""]
            lines += ["| output | max-abs | cosine | cosine of input difference |" + (" top-1 | top-5 |" if topk else ""),
                      "|---|---|---|---|" + ("---|---|" if topk else "")]
            for name, om in a.numerics.outputs.items():
                delta = "-" if om.delta_cosine is None else f"{om.delta_cosine:.6f}"
                k = "" if not topk else " " + " | ".join(
                    "-" if v is None else f"{v:.3f}" for v in (om.top1, om.top5)) + " |"
                lines.append(f"| {name} | {om.max_abs:.3g} | {om.cosine:.6f} | {delta} |{k}")
            if a.numerics.message:
                lines += ["", f"Numerics: {a.numerics.message}"]
            lines.append("")
        if a.numerics_arm is not None:
            lines += _emulator_section(a)
        if a.latency is not None:
            lines += _latency_section(a)
        lines += [f"- {note}" for note in a.artifact.notes]
        if a.artifact.details.get("pipeline"):
            lines.append("- ONNX pipeline: " + pipeline_text(a.artifact.details["pipeline"]))
        if a.seconds:
            lines.append("- stage times: " + ", ".join(f"{k} {v:.2f} s" for k, v in a.seconds.items()))
    return "\n".join(lines) + "\n"


def write_report(result: BuildResult, failures: list[tuple[str, str, Exception]] = ()) -> Path:
    return write_text_atomic(result.out_dir / "report.md", render(result, failures))
