"""edgec's packages import one way (module-level and function-level imports alike), with no cycles.

The order, lowest first; a module may import its own package and anything in a lower layer:
config/errors <- runtimes <- graph <- quantize <- lower <- validate <- package <- api <- cli, with the small
top-level modules placed where their imports put them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [
    {"edgec", "edgec.errors", "edgec.worker"},  # worker: runs named functions in a child process
    {"edgec.config", "edgec.hashing", "edgec.paths"},
    {"edgec.artifact"},  # the data types every layer passes around (LowerContext, ArtifactResult, ...)
    {"edgec.registry"},  # the one registry helper every registry uses
    {"edgec.runtimes"},  # ONNX Runtime, LiteRT, the MIL interpreter, CoreML on macOS
    {"edgec.graph"},
    {"edgec.quantize"},
    {"edgec.prepare"},  # load, simplify, passes, quantize: the graph every backend lowers
    {"edgec.samples", "edgec.sequence_samples"},  # random-weight light-zoo samples (synthetic images come from quantize)
    {"edgec.lower"},
    {"edgec.validate"},
    {"edgec.conformance", "edgec.conformance_refs"},  # ONNX node tests through any backend
    {"edgec.package"},
    {"edgec.cache", "edgec.plan", "edgec.integrate"},
    {"edgec.api"},
    {"edgec.cli"},
]


def _graph_tool():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rank(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"{package} is in no layer: add it to LAYERS in {__file__}")


def test_imports_follow_the_layer_order():
    tool = _graph_tool()
    bad = []
    for src, dst, kind, line in tool.edges(ROOT):
        a, b = tool.package_of(src), tool.package_of(dst)
        if a != b and _rank(b) > _rank(a):
            bad.append(f"{src}:{line} imports {dst} ({kind}-level): {a} sits below {b}")
    assert not bad, "\n".join(bad)


def test_backends_are_reached_through_their_interface():
    # above the lowering layer only edgec.lower.backend (get_backend and the Backend hooks) is public: the
    # estimator once imported lower/tflite/qdq.OWN_INT8 and repeated the CoreML backend's Q/DQ drop
    tool = _graph_tool()
    bad = [f"{src}:{line} imports {dst}" for src, dst, _, line in tool.edges(ROOT)
           if dst.startswith("edgec.lower.") and dst != "edgec.lower.backend" and not src.startswith("edgec.lower")]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    tool = _graph_tool()
    graph: dict[str, set[str]] = {}
    for src, dst, _, _ in tool.edges(ROOT, same_package=True):
        graph.setdefault(src, set()).add(dst)
    cycles = [c for c in tool.strongly_connected(graph) if len(c) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(sorted(c)) for c in cycles)


def test_the_checks_see_function_level_imports(tmp_path):
    # a cycle closed by an import inside a function is still a cycle
    pkg = tmp_path / "edgec"
    (pkg / "runtimes").mkdir(parents=True)
    (pkg / "lower").mkdir()
    for p in (pkg, pkg / "runtimes", pkg / "lower"):
        (p / "__init__.py").write_text("")
    (pkg / "runtimes" / "a.py").write_text("def f():\n    from edgec.lower.b import g\n")
    (pkg / "lower" / "b.py").write_text("from edgec.runtimes import a\n")
    tool = _graph_tool()
    edges = set((s, d, k) for s, d, k, _ in tool.edges(tmp_path))
    assert ("edgec.runtimes.a", "edgec.lower.b", "function") in edges
    assert ("edgec.lower.b", "edgec.runtimes.a", "module") in edges
    graph: dict[str, set[str]] = {}
    for s, d, _ in edges:
        graph.setdefault(s, set()).add(d)
    assert {"edgec.runtimes.a", "edgec.lower.b"} in [set(c) for c in tool.strongly_connected(graph)]
