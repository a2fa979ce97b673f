"""`quantize.calibration.method: auto`: every activation keeps the range (minmax, percentile or entropy) whose int8
round trip loses least on calibration samples.

One method for the whole net is a compromise: minmax keeps a ReLU6 tensor exact but spends most levels of a
long-tailed tensor on a few outliers, percentile/entropy clip those but also clip tensors that have no tail. Each
method calibrates once (ONNX Runtime's calibrators, their JSON caches); then per tensor the squared error of
x -> int8 -> x on the samples picks the range, and the merged cache (written as a MinMax cache, which is only a
table of ranges) drives every later quantization of the build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from edgec.quantize.activations import run_named, session_with_outputs
from edgec.quantize.islands import fake_quant

CANDIDATES = ("minmax", "percentile", "entropy")


def choose_ranges(model: onnx.ModelProto, calibrate: Callable[[str, Path], None], feeds: list[dict],
                  work: Path, cache: Path) -> dict[str, str]:
    """Calibrate once per method (`calibrate(method, cache_path)` writes ONNX Runtime's cache), write the per-tensor
    choice to `cache` as a MinMax cache; returns tensor -> the method chosen."""
    tables = {}
    for method in CANDIDATES:
        path = work / f"ranges-{method}.json"
        calibrate(method, path)
        tables[method] = json.loads(path.read_text())
    data = {m: t["data"] for m, t in tables.items()}
    names = sorted(set.intersection(*(set(d) for d in data.values())))
    sess = session_with_outputs(model, names)
    samples = [run_named(sess, f) for f in feeds]
    chosen: dict[str, str] = {}
    merged = tables["minmax"]
    for name in names:
        xs = [np.asarray(s[name], np.float64) for s in samples if name in s]
        if not xs or not np.issubdtype(xs[0].dtype, np.floating):
            continue
        errors = []
        for method in CANDIDATES:
            lo, hi = (_value(data[method][name][k]) for k in ("lowest", "highest"))
            err = sum(float(((fq - x) ** 2).sum()) if (fq := fake_quant(x, lo, hi)) is not None else np.inf
                      for x in xs)
            errors.append((err, CANDIDATES.index(method), method))  # ties: the earlier (simpler) method
        best = min(errors)[2]
        chosen[name] = best
        for k in ("lowest", "highest"):  # as the MinMax cache writes it: a float32 array of one value
            merged["data"][name][k] = {"data": [_value(data[best][name][k])], "dtype": "float32",
                                       "CLS": "numpy.array"}
    cache.write_text(json.dumps(merged, sort_keys=True))
    return chosen


def widen_ranges(cache: Path, factor: float) -> None:
    """Scale every calibrated range in ONNX Runtime's cache by `factor` (away from zero): headroom for values past
    the calibration data's, where a grid has steps to spare (16-bit activations)."""
    table = json.loads(cache.read_text())
    for entry in table["data"].values():
        for k in ("lowest", "highest"):
            entry[k] = {"data": [_value(entry[k]) * factor], "dtype": "float32", "CLS": "numpy.array"}
    cache.write_text(json.dumps(table, sort_keys=True))


def _value(entry) -> float:
    """One range bound from a cache entry: MinMax writes a one-value array, the histogram methods a bare float."""
    return float(np.ravel(entry["data"] if isinstance(entry, dict) else entry)[0])
