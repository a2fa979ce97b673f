"""The cross-target table of a quantized build: the same held-out inputs through every target's artifact.

Quantization is decided once in the ONNX domain, so the ORT, TFLite and CoreML artifacts share scales and zero
points; this table shows how far they agree with each other and with the fp32 model. Each artifact's outputs
were kept by edgec.quantize.accuracy.evaluate (same samples, same order), so nothing runs twice.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from edgec.quantize.accuracy import KINDS_KEY, OUTPUTS_KEY
from edgec.runtimes.outputs import output_accuracy
from edgec.quantize.stage import QuantResult


def _sameness(q: QuantResult) -> tuple:
    """Two QuantResults evaluate on the same inputs when their held-out source and indices are equal."""
    return q.data, tuple(q._holdout), q.holdout_description, q.mode


def _pair(name: str, refs: list[np.ndarray], acts: list[np.ndarray], kinds: dict) -> dict:
    m, _ = output_accuracy(name, refs, acts, kinds)
    return {"cosine": round(float(m.cosine), 6), "top1": None if m.top1 is None else round(m.top1, 4)}


def cross_target(entries: list[tuple[str, QuantResult]]) -> dict | None:
    """entries: (target name, its QuantResult) for each quantized artifact validated in this build. The block for
    the largest group of targets evaluated on the same inputs, or None when fewer than two such targets."""
    groups: dict[tuple, list[tuple[str, QuantResult]]] = {}
    for target, q in entries:
        if q is not None and target in q.reference_cache.get(OUTPUTS_KEY, {}):
            groups.setdefault(_sameness(q), []).append((target, q))
    if not groups:
        return None
    group = max(groups.values(), key=len)
    if len(group) < 2:
        return None
    refs = group[0][1].reference_cache["outputs"]
    kinds = group[0][1].reference_cache.get(KINDS_KEY, {})
    outs = {t: q.reference_cache[OUTPUTS_KEY][t] for t, q in group}
    targets = [t for t, _ in group]
    block = {"mode": group[0][1].mode, "inputs": group[0][1].holdout_description, "samples": len(refs),
             "measured": group[0][1].measured, "targets": targets, "outputs": {}}
    for name in refs[0]:
        if any(name not in o for per in outs.values() for o in per):
            continue
        r = [x[name] for x in refs]
        vs = {t: _pair(name, r, [o[name] for o in outs[t]], kinds) for t in targets}
        pairs = [{"a": a, "b": b, **_pair(name, [o[name] for o in outs[a]], [o[name] for o in outs[b]], kinds)}
                 for a, b in combinations(targets, 2)]
        entry = {"vs_fp32": vs, "pairs": pairs}
        top_vs = [v["top1"] for v in vs.values() if v["top1"] is not None]
        top_pairs = [p["top1"] for p in pairs if p["top1"] is not None]
        if top_vs and top_pairs:
            # the targets should agree with each other at least as well as each agrees with fp32
            entry["min_top1_vs_fp32"], entry["min_top1_pairwise"] = min(top_vs), min(top_pairs)
            entry["targets_agree_at_least_as_well"] = min(top_pairs) >= min(top_vs)
        block["outputs"][name] = entry
    return block


def markdown(block: dict) -> list[str]:
    """The report.md section for a cross_target block."""
    lines = ["", f"## Quantized ({block['mode']}) artifacts across targets", "",
             f"The same {block['inputs']} through every target's artifact"
             + ("" if block["measured"] else " - random data: agreement on real inputs UNMEASURED") + ".", ""]
    targets = block["targets"]
    for name, e in block["outputs"].items():
        lines += [f"Output `{name}`: top-1 agreement / cosine (min over samples); rows and columns are targets.", "",
                  "| | fp32 ONNX | " + " | ".join(targets) + " |", "|---|---|" + "---|" * len(targets)]
        pair = {(p["a"], p["b"]): p for p in e["pairs"]}
        pair.update({(p["b"], p["a"]): p for p in e["pairs"]})

        def cell(c: dict) -> str:
            return ("-" if c["top1"] is None else f"{c['top1']:.3f}") + f" / {c['cosine']:.5f}"

        for t in targets:
            row = [cell(e["vs_fp32"][t])] + ["" if u == t else cell(pair[(t, u)]) for u in targets]
            lines.append(f"| {t} | " + " | ".join(row) + " |")
        if "targets_agree_at_least_as_well" in e:
            lines += ["", f"Lowest top-1 agreement between targets {e['min_top1_pairwise']:.3f}, with fp32 "
                      f"{e['min_top1_vs_fp32']:.3f}: targets agree with each other "
                      + ("at least as well as with fp32." if e["targets_agree_at_least_as_well"]
                         else "LESS well than with fp32.")]
        lines.append("")
    return lines
