"""JUnit XML from a manifest, so CI shows every target's build, numerics and latency check as a test case."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from edgec.package.files import write_text_atomic


def _case(suite: ET.Element, classname: str, name: str, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")


def _numerics_text(n: dict) -> str:
    rows = [f"ran on: {n['ran_on']}; thresholds: {n.get('thresholds')}"]
    for out, m in n["outputs"].items():
        rows.append(f"{out}: max_abs={m['max_abs']} cosine={m['cosine']} delta_cosine={m.get('delta_cosine')}")
    return "\n".join(rows)


def render(data: dict) -> str:
    model = Path(data["model"]["path"]).name
    root = ET.Element("testsuites", name="edgec")
    suite = ET.SubElement(root, "testsuite", name=f"edgec build {model}")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    for a in data["artifacts"]:
        cls = f"edgec.{a['target']}.{a['profile']}"
        secs = a.get("seconds", {})
        _case(suite, cls, "build", secs.get("prepare", 0.0) + secs.get("lower", 0.0) + secs.get("cache", 0.0))
        counts["tests"] += 1

        case = _case(suite, cls, "numerics", secs.get("validate", 0.0))
        counts["tests"] += 1
        n = a.get("numerics")
        if n is None:
            ET.SubElement(case, "skipped", message="numerics not run (--no-validate)")
            counts["skipped"] += 1
        else:
            arm = a.get("numerics_arm")
            # --emulator on an int8 artifact: the ARM kernels gate, the x86 run is shown, not failed
            gating = not (arm is not None and str(a.get("precision", "")).startswith("int8"))
            if not n["passed"] and gating:
                f = ET.SubElement(case, "failure", message=n.get("message") or "numerics below threshold",
                                  type="numerics")
                f.text = _numerics_text(n)
                counts["failures"] += 1
            ET.SubElement(case, "system-out").text = _numerics_text(n) + ("" if gating else
                                                                          "\n(int8: the ARM-kernel run gates)")
            if arm is not None:
                case = _case(suite, cls, "numerics (ARM kernels)")
                counts["tests"] += 1
                if not arm["passed"]:
                    ET.SubElement(case, "failure", message=arm.get("message") or "numerics below threshold",
                                  type="numerics").text = _numerics_text(arm)
                    counts["failures"] += 1
                ET.SubElement(case, "system-out").text = _numerics_text(arm)

        case = _case(suite, cls, "latency")
        counts["tests"] += 1
        lat = a.get("latency")
        if lat is None or lat.get("mode") == "off":
            ET.SubElement(case, "skipped", message="latency not measured (mode off or --no-validate)")
            counts["skipped"] += 1
            continue
        summary = (f"mode {lat['mode']}: median {lat.get('median_ms')} ms, p90 {lat.get('p90_ms')} ms, "
                   f"budget {lat.get('budget_ms')} ms on {lat.get('runs')} runs, {lat.get('threads')} threads")
        if lat.get("passed") is False:
            ET.SubElement(case, "failure", message=lat.get("message") or "over the latency budget",
                          type="latency").text = summary
            counts["failures"] += 1
        ET.SubElement(case, "system-out").text = summary

    # a target that produced no artifact is an error case, so CI shows it red with the reason
    for e in data.get("errors", []):
        case = _case(suite, f"edgec.{e['target']}.{e['profile']}", "build")
        ET.SubElement(case, "error", message=e["message"], type=e["kind"])
        counts["tests"] += 1
        counts["errors"] += 1

    for el in (root, suite):
        for k, v in counts.items():
            el.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(data: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, render(data))


def failed_build_data(model_path: Path, target: str, profile: str, kind: str, message: str) -> dict:
    """A manifest-shaped dict for a build that stopped before writing a manifest (single target, bad model)."""
    return {"model": {"path": str(model_path)}, "artifacts": [],
            "errors": [{"target": target, "profile": profile, "kind": kind, "message": message}]}


def read_failed_build(path: Path) -> list[dict]:
    """The error cases of a JUnit file written by edgec for a failed build (for `edgec merge`)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    out = []
    for case in root.iter("testcase"):
        err = case.find("error")
        parts = (case.get("classname") or "").split(".", 2)
        if err is not None and len(parts) == 3 and parts[0] == "edgec":
            out.append({"target": parts[1], "profile": parts[2], "kind": err.get("type") or "error",
                        "message": err.get("message") or ""})
    return out
