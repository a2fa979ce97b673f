"""report.html: a self-contained page (inline CSS and SVG charts; no JavaScript, no network) from a manifest."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from edgec.package.files import write_text_atomic

CSS = """
body{font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;
color:#1f2328;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.muted{color:#59636e}.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}
.badge.pass{background:#1a7f37;color:#fff}.badge.fail{background:#cf222e;color:#fff}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f6f8fa;padding:1px 4px;border-radius:4px}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{border:1px solid #d0d7de;border-radius:6px;padding:8px}
.chart h3{font-size:14px;margin:0 0 4px}.note{font-size:12px;max-width:520px}ul{margin:4px 0 8px 18px;padding:0}details{margin:6px 0}
"""

PASS, FAIL, GREY, BLUE = "#1a7f37", "#cf222e", "#8c959f", "#0969da"


def _label(a: dict) -> str:
    return f"{a['target']} / {a['profile']}"


def _fmt(x, spec: str = ".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return escape(x)
    return format(x, spec)


def _bars(title: str, unit: str, rows: list[tuple[str, float | None, str]], marks: list[tuple[int, float, str]] = (),
          whiskers: dict[int, float] | None = None, note: str = "") -> str:
    """A horizontal bar chart as inline SVG. rows: (label, value, colour); marks: (row, value, tooltip) ticks
    drawn across a bar (budgets, thresholds); whiskers: row -> value drawn as a thin line (p90)."""
    # label column sized to the longest label (about 7 px per character at 12 px sans-serif)
    label_w = min(320, max(80, 8 + 7 * max((len(r[0]) for r in rows), default=8)))
    width, bar_h, gap = label_w + 330, 18, 8
    plot_w = width - label_w - 70
    values = [v for _, v, _ in rows if v is not None] + [v for _, v, _ in marks] + list((whiskers or {}).values())
    top = max(values, default=1.0) or 1.0
    height = len(rows) * (bar_h + gap) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">']
    for i, (label, value, colour) in enumerate(rows):
        y = 4 + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        if value is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + 13}" fill="{GREY}">n/a</text>')
            continue
        w = max(1.0, plot_w * value / top)
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}" rx="2">'
                     f'<title>{escape(label)}: {value:.4g} {escape(unit)}</title></rect>')
        end = w
        if whiskers and i in whiskers:
            wx = label_w + plot_w * whiskers[i] / top
            end = max(end, wx - label_w)
            parts.append(f'<line x1="{label_w + w:.1f}" y1="{y + bar_h / 2}" x2="{wx:.1f}" y2="{y + bar_h / 2}" '
                         f'stroke="#1f2328" stroke-width="1.5"/><line x1="{wx:.1f}" y1="{y + 3}" x2="{wx:.1f}" '
                         f'y2="{y + bar_h - 3}" stroke="#1f2328" stroke-width="1.5"/>')
        parts.append(f'<text x="{label_w + end + 4:.1f}" y="{y + 13}">{value:.3g} {escape(unit)}</text>')
    for i, value, tip in marks:
        y = 4 + i * (bar_h + gap)
        x = label_w + plot_w * value / top
        parts.append(f'<line x1="{x:.1f}" y1="{y - 3}" x2="{x:.1f}" y2="{y + bar_h + 3}" stroke="{FAIL}" '
                     f'stroke-width="2" stroke-dasharray="3,2"><title>{escape(tip)}</title></line>')
    parts.append("</svg>")
    # the note is HTML under the chart so it wraps instead of being clipped by the SVG box
    return (f'<div class="chart"><h3>{escape(title)}</h3>{"".join(parts)}'
            f'<div class="muted note">{escape(note)}</div></div>')


def _size_chart(arts: list[dict]) -> str:
    rows = [(_label(a), a["bytes"] / 1e6, BLUE) for a in arts]
    return _bars("Artifact size", "MB", rows, note="MB = 10^6 bytes")


def _latency_chart(arts: list[dict]) -> str:
    rows, marks, whiskers = [], [], {}
    for i, a in enumerate(arts):
        lat = a.get("latency") or {}
        med = lat.get("median_ms")
        colour = FAIL if lat.get("passed") is False else (PASS if lat.get("passed") else BLUE)
        noisy = ", noisy" if lat.get("noisy") else ""
        rows.append((f"{_label(a)} ({lat.get('mode', 'off')}{noisy})", med if isinstance(med, (int, float)) else None, colour))
        if isinstance(lat.get("p90_ms"), (int, float)):
            whiskers[i] = lat["p90_ms"]
        if lat.get("budget_ms"):
            marks.append((i, lat["budget_ms"], f"budget {lat['budget_ms']:g} ms"))
    return _bars("Latency (median; line to p90; dashed red = budget)", "ms", rows, marks, whiskers,
                 note="mode in brackets: host = measured on the build machine")


def _digits(cos) -> float | None:
    """Digits of agreement: -log10(1 - cosine), capped at 12 (identical outputs)."""
    if not isinstance(cos, (int, float)) or math.isnan(cos):
        return None
    return min(12.0, -math.log10(max(1.0 - cos, 1e-12)))


def _gates(a: dict, m: dict) -> tuple[float | None, float | None]:
    """The cosine gates this output of this artifact was held to (as quantize.accuracy / numerics.compare apply
    them): (cosine, cosine of input difference). None: not a gate for it (top-1 agreement decides a measured
    classifier output of a reduced-precision build)."""
    gates = (a.get("numerics") or {}).get("thresholds") or {}
    measured = ((a.get("details") or {}).get("quantize") or {}).get("accuracy_measured", False)
    decided_by_top1 = measured and m.get("top1") is not None and gates.get("min_top1") is not None
    cos = None if decided_by_top1 else gates.get("min_cosine")
    return cos, gates.get("min_delta_cosine", gates.get("min_cosine"))


def _numerics_chart(arts: list[dict]) -> str:
    rows, marks = [], []
    runs = [(a, a.get(key), tag) for a in arts for key, tag in (("numerics", ""), ("numerics_arm", " ARM"))]
    for a, n, tag in runs:
        if not n:
            continue
        for out, m in n["outputs"].items():
            for kind, cos, gate in zip(("", " (input diff)"), (m.get("cosine"), m.get("delta_cosine")), _gates(a, m)):
                if cos is None:
                    continue
                d = _digits(cos)
                if not isinstance(gate, (int, float)):
                    rows.append((f"{a['target']}{tag}: {out}{kind}", d, BLUE))  # not gated (top-1 decides)
                    continue
                ok = isinstance(cos, (int, float)) and cos >= gate
                rows.append((f"{a['target']}{tag}: {out}{kind}", d, PASS if ok else FAIL))
                if gate < 1:
                    marks.append((len(rows) - 1, _digits(gate), f"{a['precision']} gate: cosine {gate}"))
    if not rows:
        return ""
    return _bars("Numerics vs ONNX Runtime: digits of cosine agreement", "digits", rows, marks,
                 note="-log10(1 - cosine); 6 = cosine 0.999999; dashed red = the gate this artifact's precision "
                      "is held to; blue = not gated (top-1 agreement decides)")


def _artifact_table(arts: list[dict]) -> str:
    head = ("target", "profile", "artifact", "size", "precision", "numerics", "latency", "result")
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for a in arts:
        n, lat = a.get("numerics"), a.get("latency")
        if n:
            num = _verdict(n)
        else:
            num = "not run"
        if a.get("numerics_arm"):  # --emulator: the ARM-kernel verdict beside the host-kernel one
            num += f"<br>ARM: {_verdict(a['numerics_arm'])}"
        if lat and isinstance(lat.get("median_ms"), (int, float)):
            budget = f" / {lat['budget_ms']:g} ms" if lat.get("budget_ms") else ""
            mark = {True: ' <span class="pass">pass</span>', False: ' <span class="fail">FAIL</span>'}.get(
                lat.get("passed"), "")
            noisy = ' <span class="fail">(noisy)</span>' if lat.get("noisy") else ""
            latency = (f"{escape(lat['mode'])}: {lat['median_ms']:.2f} ms median, p90 {lat['p90_ms']:.2f}{budget}"
                       f"{mark}{noisy}")
        else:
            latency = escape(lat["mode"]) if lat else "off"
        result = '<span class="pass">pass</span>' if a["passed"] else '<span class="fail">FAIL</span>'
        out.append(
            f"<tr><td>{escape(a['target'])}</td><td>{escape(a['profile'])}</td><td><code>{escape(a['path'])}</code></td>"
            f"<td class=num>{a['bytes'] / 1e6:.2f} MB</td><td>{escape(a['precision'])}</td><td>{num}</td>"
            f"<td>{latency}</td><td>{result}</td></tr>"
        )
    return "".join(out) + "</table>"


def _verdict(n: dict) -> str:
    worst = min((m["cosine"] for m in n["outputs"].values() if isinstance(m["cosine"], (int, float))), default=None)
    return (f'<span class="{"pass" if n["passed"] else "fail"}">{"pass" if n["passed"] else "FAIL"}</span> '
            f"cos {_fmt(worst, '.6f')} ({escape(n['ran_on'])})")


def _arm_details(a: dict) -> str:
    """The ARM-kernel run (--emulator) beside the host-kernel one, per output, as report.md shows it."""
    n, h = a["numerics_arm"], a.get("numerics") or {"outputs": {}}
    d = (a.get("details") or {}).get("emulator") or {}
    parts = [f"<p>ARM kernels ({escape(n['ran_on'])}, {n.get('samples') or '?'} input(s), "
             f"{_fmt(d.get('seconds'), '.1f')} s under emulation; the verdict comes from the "
             f"{escape(str(d.get('gates', 'ARM kernels')))}):</p>",
             "<table><tr><th>output</th><th>host max-abs</th><th>host cosine</th><th>ARM max-abs</th>"
             "<th>ARM cosine</th><th>ARM vs host kernels, same inputs</th></tr>"]
    for name, m in n["outputs"].items():
        hm = h["outputs"].get(name) or {}
        v = (d.get("vs_host") or {}).get(name)
        vs = "-" if v is None else ("identical" if v.get("identical") else
                                    f"cos {_fmt(v.get('cosine'), '.7f')}, max-abs {_fmt(v.get('max_abs'))}")
        parts.append(f"<tr><td>{escape(name)}</td><td class=num>{_fmt(hm.get('max_abs'))}</td>"
                     f"<td class=num>{_fmt(hm.get('cosine'), '.6f')}</td><td class=num>{_fmt(m.get('max_abs'))}</td>"
                     f"<td class=num>{_fmt(m.get('cosine'), '.6f')}</td><td>{escape(vs)}</td></tr>")
    parts.append("</table>")
    if n.get("message"):
        parts.append(f"<p>ARM numerics: {escape(n['message'])}</p>")
    return "".join(parts)


def _details(a: dict) -> str:
    parts = [f"<h2>{escape(a['target'])} / {escape(a['profile'])} <span class=muted>({escape(a['format'])}, "
             f"sha256 <code>{escape(a['sha256'][:16])}</code>)</span></h2>"]
    n = a.get("numerics")
    if n:
        topk = any(m.get("top1") is not None for m in n["outputs"].values())
        if n.get("data"):
            parts.append(f"<p>Accuracy vs the fp32 ONNX model on {escape(n['data'])}:</p>")
        parts.append("<table><tr><th>output</th><th>max-abs</th><th>cosine</th><th>cosine of input difference</th>"
                     + ("<th>top-1</th><th>top-5</th>" if topk else "") + "</tr>")
        for out, m in n["outputs"].items():
            k = "".join(f"<td class=num>{_fmt(m.get(x), '.3f')}</td>" for x in ("top1", "top5")) if topk else ""
            parts.append(f"<tr><td>{escape(out)}</td><td class=num>{_fmt(m['max_abs'])}</td>"
                         f"<td class=num>{_fmt(m['cosine'], '.6f')}</td><td class=num>{_fmt(m.get('delta_cosine'), '.6f')}</td>{k}</tr>")
        parts.append("</table>")
        gates = n.get("thresholds") or {}
        if gates:
            parts.append(f'<p class="muted">{escape(a["precision"])} gates: '
                         + ", ".join(f"{escape(k)} {v:g}" for k, v in gates.items() if isinstance(v, (int, float)))
                         + "</p>")
        if n.get("message"):
            parts.append(f"<p>Numerics: {escape(n['message'])}</p>")
    if a.get("numerics_arm"):
        parts.append(_arm_details(a))
    lat = a.get("latency")
    if lat:
        parts.append(_latency_details(lat))
    if a.get("notes"):
        parts.append("<ul>" + "".join(f"<li>{escape(str(x))}</li>" for x in a["notes"]) + "</ul>")
    runs = (a.get("details") or {}).get("pipeline")
    if runs:
        parts.append("<details><summary>ONNX pipeline (stages in order)</summary><table><tr><th>stage</th>"
                     "<th>rewrites</th><th>nodes before</th><th>nodes after</th></tr>"
                     + "".join(f"<tr><td>{escape(r['pass'])}</td><td class=num>{r['rewrites']}</td><td class=num>"
                               f"{r['nodes_before']}</td><td class=num>{r['nodes_after']}</td></tr>" for r in runs)
                     + "</table></details>")
    if a.get("seconds"):
        parts.append('<p class="muted">stage times: '
                     + ", ".join(f"{escape(k)} {v:.2f} s" for k, v in a["seconds"].items()) + "</p>")
    return "".join(parts)


def _latency_details(lat: dict) -> str:
    """What report.md says about latency: the method, the noisy flag, notes, and the estimator's slowest ops."""
    d = lat.get("details") or {}
    head = f"Latency: {escape(lat.get('mode', 'off'))}"
    if isinstance(lat.get("median_ms"), (int, float)):
        head += f", median {lat['median_ms']:.2f} ms, p90 {lat['p90_ms']:.2f} ms" + (
            f", {lat['runs']} runs" if lat.get("runs") else "")
    if lat.get("noisy"):
        head += (' <span class="fail">noisy</span> <span class="muted">(spread (p90 - min) / median '
                 f"{_fmt(lat.get('spread'))}: the machine was busy)</span>")
    items = [f"method: {escape(d['method'])}"] if d.get("method") else []
    items += [f"device: {escape(str(d['device']))}"] if d.get("device") else []
    items += [escape(str(x)) for x in d.get("notes", [])]
    items += [escape(lat["message"])] if lat.get("message") else []
    parts = [f"<p>{head}</p>"] + (["<ul>" + "".join(f"<li>{x}</li>" for x in items) + "</ul>"] if items else [])
    if d.get("ops"):  # --emulator, .ort: instructions per op (ONNX Runtime's profiler marks the boundaries)
        parts.append(f"<details open><summary>{escape(d.get('ops_note', 'per op'))}</summary><table><tr><th>op</th>"
                     "<th>type</th><th>instructions</th><th>FMLA</th><th>SDOT/UDOT</th><th>cycles</th><th>bound</th>"
                     "<th>ms</th></tr>"
                     + "".join(f"<tr><td>{escape(o['name'])}</td><td>{escape(o['op_type'])}</td>"
                               f"<td class=num>{o['instructions']:,}</td><td class=num>{o['fmla']:,}</td>"
                               f"<td class=num>{o['sdot_udot']:,}</td><td class=num>{o['cycles']:,}</td>"
                               f"<td>{escape(o['bound'])}</td><td class=num>{o['ms']:.3f}</td></tr>" for o in d["ops"])
                     + "</table></details>")
    est = d.get("estimate")
    if est and est.get("top_ops"):
        parts.append(f"<details open><summary>slowest ops (roofline on {escape(str(est.get('profile')))}, "
                     f"{_fmt(est.get('total_ms'), '.2f')} ms in all"
                     + (f"; every op in <code>{escape(d['table'])}</code>" if d.get("table") else "")
                     + ")</summary><table><tr><th>op</th><th>type</th><th>est. ms</th><th>GFLOP</th>"
                     "<th>MB moved</th><th>bound</th></tr>")
        for o in est["top_ops"]:
            parts.append(f"<tr><td>{escape(o['name'])}</td><td>{escape(o['op_type'])}</td>"
                         f"<td class=num>{o['ms']:.3f}</td><td class=num>{o['gflop']:.4f}</td>"
                         f"<td class=num>{o['mbytes']:.2f}</td><td>{escape(o['bound'])}"
                         f"{' (fused)' if o.get('fused') else ''}</td></tr>")
        parts.append("</table></details>")
    return "".join(parts)


def _cross_target(block: dict) -> str:
    """The quantized artifacts' agreement across targets (report.md's section of the same name)."""
    parts = [f"<h2>Quantized ({escape(block['mode'])}) artifacts across targets</h2>",
             f"<p>The same {escape(str(block['inputs']))} through every target's artifact"
             + ("" if block["measured"] else " - random data: agreement on real inputs UNMEASURED") + ".</p>"]
    targets = block["targets"]
    for name, e in block["outputs"].items():
        pair = {(p["a"], p["b"]): p for p in e["pairs"]}
        pair.update({(p["b"], p["a"]): p for p in e["pairs"]})

        def cell(c: dict) -> str:
            return ("-" if c["top1"] is None else f"{c['top1']:.3f}") + f" / {c['cosine']:.5f}"

        parts.append(f"<p>Output <code>{escape(name)}</code>: top-1 agreement / cosine (min over samples)</p>"
                     "<table><tr><th></th><th>fp32 ONNX</th>" + "".join(f"<th>{escape(t)}</th>" for t in targets)
                     + "</tr>")
        for t in targets:
            row = [cell(e["vs_fp32"][t])] + ["" if u == t else cell(pair[(t, u)]) for u in targets]
            parts.append(f"<tr><th>{escape(t)}</th>" + "".join(f"<td class=num>{c}</td>" for c in row) + "</tr>")
        parts.append("</table>")
        if "targets_agree_at_least_as_well" in e:
            parts.append(f"<p>Lowest top-1 agreement between targets {e['min_top1_pairwise']:.3f}, with fp32 "
                         f"{e['min_top1_vs_fp32']:.3f}: targets agree with each other "
                         + ("at least as well as with fp32." if e["targets_agree_at_least_as_well"]
                            else "LESS well than with fp32.") + "</p>")
    return "".join(parts)


def render(data: dict) -> str:
    m, arts = data["model"], data["artifacts"]
    name = Path(m["path"]).name
    ok = data.get("passed", False)
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>edgec build: {escape(name)}</title><style>{CSS}</style></head><body>",
        f"<h1>edgec build: {escape(name)} <span class=\"badge {'pass' if ok else 'fail'}\">"
        f"{'PASSED' if ok else 'FAILED'}</span></h1>",
        f"<p class=muted>opset {m['opset']}, {m.get('nodes', '?')} nodes, {m.get('parameters', 0):,} parameters, "
        f"{m['bytes'] / 1e6:.2f} MB, sha256 <code>{escape(m['sha256'][:16])}</code>; edgec {escape(data['edgec_version'])}</p>",
        "<h2>Artifacts</h2>", _artifact_table(arts),
    ]
    if data.get("errors"):
        parts.append("<h2>Targets that failed to build</h2><table><tr><th>target</th><th>profile</th><th>error</th>"
                     "<th>message</th></tr>")
        for e in data["errors"]:
            parts.append(f"<tr><td>{escape(e['target'])}</td><td>{escape(e['profile'])}</td>"
                         f"<td class=fail>{escape(e['kind'])}</td><td>{escape(e['message'])}</td></tr>")
        parts.append("</table>")
    if arts:
        parts += ["<h2>Charts</h2><div class=charts>", _size_chart(arts), _latency_chart(arts),
                  _numerics_chart(arts), "</div>"]
    if data.get("cross_target"):
        parts.append(_cross_target(data["cross_target"]))
    parts += [_details(a) for a in arts]
    versions = ", ".join(f"{escape(k)} {escape(str(v))}" for k, v in data.get("versions", {}).items())
    parts.append(f"<p class=muted>versions: {versions}</p></body></html>")
    return "\n".join(parts) + "\n"


def write_html(data: dict, out_dir: Path) -> Path:
    return write_text_atomic(Path(out_dir) / "report.html", render(data))
