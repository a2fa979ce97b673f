"""Seeded mutation fuzzing of edgec builds (issue 21).

A case = a base model (tests.hardening.models: a CNN, an attention block, an LSTM), one seeded mutation (a field
edit of the ONNX protobuf, or a byte mutation of the serialized file), and `edgec build --target all` on the
result in a subprocess with a timeout. A case is bad when edgec
  - exits 70 (internal error), with a signal, or with a code that is not documented (edgec.errors),
  - prints a traceback,
  - hangs (the timeout),
  - leaves a temporary file (its TMPDIR must be empty afterwards) or a staging folder,
  - leaves an output folder that is not one whole build (files = what the manifest lists), or one after a
    build that failed as a whole.
Used by tests/fuzz/test_fuzz.py (a small seeded sample in CI) and bench/fuzz.py (thousands).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

from tests.hardening.models import BASES

REPO = Path(__file__).resolve().parents[2]


def _documented_codes() -> set[int]:
    """0 and every EdgecError's exit code (edgec.errors), except 70: an internal error is a bug."""
    import edgec.errors as errors

    classes, todo = set(), [errors.EdgecError]
    while todo:
        cls = todo.pop()
        classes.add(cls)
        todo.extend(cls.__subclasses__())
    return ({0} | {c.exit_code for c in classes}) - {70}


DOCUMENTED = _documented_codes()  # a new error class (e.g. ReferenceNotFinite, 12) is documented with its code
HUGE_DIMS = [0, 1, 2, 3, 7, 64, 1 << 31, 1 << 40, (1 << 63) - 1]
# ONNX Runtime (1.2x) keeps a session id file in the temp folder and reuses it: not an edgec leftover
RUNTIME_FILES = {".ses"}
ONNX_TYPES = [t for t in TensorProto.DataType.values() if t != 0]


# --- field mutations: each takes (model, rng) and returns a short description -------------------------------

def _node(m, rng):
    return rng.choice(list(m.graph.node)) if m.graph.node else None


def mut_shape(m, rng):
    v = rng.choice(list(m.graph.input) + list(m.graph.output))
    dims = v.type.tensor_type.shape.dim
    choice = rng.random()
    if choice < 0.15 and len(dims):
        del dims[rng.randrange(len(dims))]
        return f"dropped a dim of {v.name}"
    if choice < 0.25:
        dims.add().dim_value = rng.choice([1, 2, 5])
        return f"added a dim to {v.name}"
    if not len(dims):
        return "no dims"
    d = dims[rng.randrange(len(dims))]
    if rng.random() < 0.2:
        d.Clear()
        d.dim_param = rng.choice(["N", "", "batch size", "?"])
        return f"{v.name} dim symbolic {d.dim_param!r}"
    d.Clear()
    d.dim_value = rng.choice(HUGE_DIMS + [-1, -7])
    return f"{v.name} dim = {d.dim_value}"


def mut_dtype(m, rng):
    v = rng.choice(list(m.graph.input) + list(m.graph.output))
    v.type.tensor_type.elem_type = rng.choice(ONNX_TYPES + [0, 99])
    return f"{v.name} elem_type {v.type.tensor_type.elem_type}"


def mut_attribute(m, rng):
    n = _node(m, rng)
    if n is None:
        return "no node"
    if not n.attribute or rng.random() < 0.25:
        a = n.attribute.add()
        a.name = rng.choice(["axis", "pads", "kernel_shape", "perm", "bogus", "to"])
        if rng.random() < 0.5:
            a.type = onnx.AttributeProto.INT
            a.i = rng.choice([-5, 0, 1, 3, 1 << 40])
        else:
            a.type = onnx.AttributeProto.INTS
            a.ints.extend(rng.choice([[], [0], [-1, 1], [1 << 40, 2], [1, 1, 1, 1, 1, 1, 1, 1]]))
        return f"{n.name}: added attribute {a.name}"
    a = rng.choice(list(n.attribute))
    r = rng.random()
    if r < 0.2:
        n.attribute.remove(a)
        return f"{n.name}: removed attribute {a.name}"
    if a.type == onnx.AttributeProto.INT or r < 0.4:
        a.type, a.i = onnx.AttributeProto.INT, rng.choice([-3, -1, 0, 2, 9, 1 << 33])
        del a.ints[:]
        return f"{n.name}.{a.name} = {a.i}"
    if a.type == onnx.AttributeProto.INTS:
        vals = list(a.ints) or [1]
        vals[rng.randrange(len(vals))] = rng.choice([-2, 0, 5, 1 << 35])
        if rng.random() < 0.3:
            vals = vals[:-1] if rng.random() < 0.5 else vals + [1]
        del a.ints[:]
        a.ints.extend(vals)
        return f"{n.name}.{a.name} = {vals}"
    a.type = onnx.AttributeProto.FLOAT
    a.f = rng.choice([float("nan"), float("inf"), -1.0, 0.0])
    return f"{n.name}.{a.name} = float {a.f}"


def mut_opset(m, rng):
    imp = m.opset_import[0]
    r = rng.random()
    if r < 0.7:
        imp.version = rng.choice([0, 1, 6, 7, 9, 10, 11, 12, 14, 17, 18, 19, 21, 22, 23, 40, 10 ** 6])
        return f"opset {imp.version}"
    if r < 0.85:
        imp.domain = rng.choice(["com.example", "ai.onnx.ml", " "])
        return f"opset domain {imp.domain!r}"
    m.ir_version = rng.choice([0, 1, 3, 4, 7, 10, 11, 99])
    return f"ir_version {m.ir_version}"


def mut_names(m, rng):
    g = m.graph
    n = _node(m, rng)
    r = rng.random()
    if r < 0.2 and n is not None:
        n.name = rng.choice(["", g.node[0].name, "x" * 5000, "a/b:c", "ünï cødé", "main", "int8", "1abc"])
        return f"node name -> {n.name[:20]!r}"
    if r < 0.4 and n is not None and n.output:
        n.output[0] = rng.choice(["", g.input[0].name, n.input[0] if n.input else "z", "ünï/cødé:0", "1"])
        return f"node {n.name} output -> {n.output[0]!r}"
    if r < 0.55 and n is not None and n.input:
        n.input[rng.randrange(len(n.input))] = rng.choice(["", "missing", g.output[0].name])
        return f"node {n.name} input -> {n.input[0]!r}"
    if r < 0.7:
        v = rng.choice(list(g.input) + list(g.output))
        new = rng.choice(["", "in put", "ünï", "x" * 300, "main", "float", g.output[0].name, g.input[0].name])
        old = v.name
        v.name = new
        for node in g.node:
            node.input[:] = [new if i == old else i for i in node.input]
            node.output[:] = [new if o == old else o for o in node.output]
        return f"renamed {old} -> {new[:20]!r}"
    if r < 0.85:
        v = rng.choice(list(g.input) + list(g.output))
        return f"non-UTF-8 name for {v.name}", v.name  # applied to the bytes in mutate()
    t = rng.choice(list(g.initializer))
    t.name = rng.choice([g.input[0].name, "", t.name + "_orphan", g.output[0].name])
    return f"initializer renamed {t.name!r}"


def mut_initializer(m, rng):
    t = rng.choice(list(m.graph.initializer))
    r = rng.random()
    if r < 0.25:
        dims = list(t.dims) or [1]
        dims[rng.randrange(len(dims))] = rng.choice([0, 1, 2, 1 << 20, 1 << 40])
        del t.dims[:]
        t.dims.extend(dims)
        return f"{t.name} dims {dims}"
    if r < 0.45:
        t.raw_data = t.raw_data[: rng.randrange(max(1, len(t.raw_data)))]
        return f"{t.name} raw_data truncated to {len(t.raw_data)}"
    if r < 0.6:
        t.data_type = rng.choice(ONNX_TYPES + [0])
        return f"{t.name} data_type {t.data_type}"
    if r < 0.75:
        raw = t.raw_data
        t.ClearField("raw_data")
        t.float_data.extend([1.0] * rng.choice([0, 1, len(raw) // 4]))
        return f"{t.name} float_data instead of raw_data"
    del t.dims[:]
    t.dims.extend([rng.choice([1, 2, 3])] * rng.choice([0, 1, 5, 9]))
    return f"{t.name} rank changed {list(t.dims)}"


def mut_external(m, rng):
    t = rng.choice(list(m.graph.initializer))
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    loc = rng.choice(["../../etc/passwd", "/etc/passwd", "missing.bin", "weights.bin", "", ".", "sub/../weights.bin"])
    del t.external_data[:]
    e = t.external_data.add()
    e.key, e.value = "location", loc
    if rng.random() < 0.5:
        e = t.external_data.add()
        e.key, e.value = rng.choice([("offset", "999999999"), ("length", "-5"), ("offset", "x"), ("length", "4")])
    return f"{t.name} external data at {loc!r}"


def mut_cycle(m, rng):
    nodes = list(m.graph.node)
    if len(nodes) < 2:
        return "too small"
    i, j = sorted(rng.sample(range(len(nodes)), 2))
    if nodes[i].input and nodes[j].output:
        nodes[i].input[0] = nodes[j].output[0]  # an earlier node reads a later one's output: a cycle
    return f"cycle {nodes[i].name} <- {nodes[j].name}"


def mut_duplicate_outputs(m, rng):
    g = m.graph
    r = rng.random()
    if r < 0.4:
        g.output.add().CopyFrom(g.output[0])
        return "graph output listed twice"
    if r < 0.7 and len(g.node) >= 2:
        a, b = rng.sample(list(g.node), 2)
        b.output[0] = a.output[0]
        return f"{a.name} and {b.name} write the same tensor"
    n = _node(m, rng)
    g.node.add().CopyFrom(n)
    return f"node {n.name} duplicated"


def mut_structure(m, rng):
    g = m.graph
    r = rng.random()
    n = _node(m, rng)
    if r < 0.3:
        g.node.remove(n)
        return f"removed node {n.name}"
    if r < 0.55:
        n.op_type = rng.choice(["NoSuchOp", "Conv", "Relu", "Loop", "If", "Reshape", "Gather"])
        return f"{n.name} op_type -> {n.op_type}"
    if r < 0.7:
        n.domain = rng.choice(["com.microsoft", "custom", "ai.onnx.ml"])
        return f"{n.name} domain -> {n.domain}"
    if r < 0.85:
        nodes = list(g.node)
        rng.shuffle(nodes)
        del g.node[:]
        g.node.extend(nodes)
        return "nodes shuffled"
    del g.output[:]
    return "no graph outputs"


FIELD_MUTATIONS = {
    "shape": mut_shape, "dtype": mut_dtype, "attribute": mut_attribute, "opset": mut_opset, "names": mut_names,
    "initializer": mut_initializer, "external": mut_external, "cycle": mut_cycle,
    "duplicate": mut_duplicate_outputs, "structure": mut_structure,
}


def mut_bytes(data: bytes, rng) -> tuple[bytes, str]:
    b = bytearray(data)
    r = rng.random()
    if r < 0.4:
        k = rng.choice([1, 2, 8, 32])
        for _ in range(k):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b), f"{k} random byte(s) changed"
    if r < 0.6:
        cut = rng.randrange(len(b))
        return bytes(b[:cut]), f"truncated to {cut} bytes"
    if r < 0.8:
        pos = rng.randrange(len(b))
        return bytes(b[:pos]) + bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 16]))) + bytes(b[pos:]), \
            f"bytes inserted at {pos}"
    i, j = sorted(rng.sample(range(len(b)), 2))
    return bytes(b[:j]) + bytes(b[i:j]) + bytes(b[j:]), f"chunk {i}:{j} duplicated"


def mutate(base: str, seed: int) -> tuple[bytes, str, str]:
    """(model bytes, mutation class, description) for one seeded case."""
    rng = random.Random(f"{base}:{seed}")
    model = BASES[base]()
    kind = rng.choice(list(FIELD_MUTATIONS) + ["bytes", "bytes"])
    if kind == "bytes":
        data, what = mut_bytes(model.SerializeToString(), rng)
        return data, kind, what
    out = FIELD_MUTATIONS[kind](model, rng)
    data = model.SerializeToString()
    if isinstance(out, tuple):  # a name to write as invalid UTF-8 (protobuf refuses to set such a str)
        what, name = out
        raw = bytes([0xFF]) + name.encode()[1:]
        data = data.replace(b"\x0a" + bytes([len(name)]) + name.encode(), b"\x0a" + bytes([len(name)]) + raw)
        data = data.replace(b"\x12" + bytes([len(name)]) + name.encode(), b"\x12" + bytes([len(name)]) + raw)
        data = data.replace(b"\x3a" + bytes([len(name)]) + name.encode(), b"\x3a" + bytes([len(name)]) + raw)
        return data, kind, what
    return data, kind, out


@dataclass
class CaseResult:
    base: str
    seed: int
    kind: str
    what: str
    returncode: int | None
    bad: list[str]
    stderr: str
    seconds: float
    cpu: float | None = None  # CPU seconds of the case's process and its workers


def _output_problems(out: Path, rc: int | None) -> list[str]:
    if not out.exists():
        return []
    names = sorted(p.name for p in out.iterdir())
    hidden = [n for n in names if n.startswith(".")]
    if hidden:
        return [f"left {hidden} in the output folder"]
    if "manifest.json" not in names:
        return [f"output folder without a manifest: {names}"]
    from edgec.hashing import sha256_path, size_of

    data = json.loads((out / "manifest.json").read_text())
    listed = {"manifest.json", "report.md", "report.html"}
    problems = []
    for a in data["artifacts"]:
        listed.add(a["path"])
        listed.update(a["extra_files"])
        p = out / a["path"]
        if not p.exists() or sha256_path(p) != a["sha256"] or size_of(p) != a["bytes"]:
            problems.append(f"{a['path']} does not match the manifest")
    if sorted(listed) != names:
        problems.append(f"files {names} are not the manifest's {sorted(listed)}")
    if not data["artifacts"]:
        problems.append("an output folder with no artifact (a build that failed as a whole)")
    return problems


class ForkServer:
    """A client of tests/fuzz/forkserver.py: one process that imported edgec and its runtimes once and forks one
    child per case (a real separate process: own exit code, stdout/stderr, environment, timeout). Restarted if it
    dies. One case at a time; use one server per thread."""

    def __init__(self) -> None:
        self._proc = None

    def _start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.forkserver"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                      cwd=REPO)
        if "ready" not in json.loads(self._proc.stdout.readline() or "{}"):
            raise RuntimeError("the fuzz fork server did not start")

    def run(self, args: list[str], env: dict, cwd: Path, timeout: float) -> tuple[int | None, str, float]:
        """(returncode or None on timeout, stderr + stdout, CPU seconds)."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        out, err = Path(cwd) / ".stdout", Path(cwd) / ".stderr"
        req = {"args": args, "env": env, "cwd": str(cwd), "stdout": str(out), "stderr": str(err), "timeout": timeout}
        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            self._proc = None
            raise RuntimeError("the fuzz fork server died")
        reply = json.loads(line)
        text = err.read_text(errors="replace") + out.read_text(errors="replace")
        out.unlink()
        err.unlink()
        if reply["returncode"] is None:
            text = f"timeout after {timeout} s; {text[-2000:]}"
        if reply["orphans"]:
            text += "\n[fuzz] the build left a process running after it exited"
        return reply["returncode"], text, reply["cpu"]

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
            self._proc = None


def run_case(base: str, seed: int, timeout: float = 120, validate: bool = True, workdir: Path | None = None,
             extra_env: dict | None = None, server: ForkServer | None = None) -> CaseResult:
    """`validate`: numerics checked too (latency off: it is not what is fuzzed). `server`: run the build as a
    child of a fork server (cheap) instead of a fresh `python -m edgec.cli` subprocess."""
    import time

    data, kind, what = mutate(base, seed)
    root = Path(tempfile.mkdtemp(prefix="edgec-fuzz-", dir=workdir))
    try:
        model, out, tmp = root / "case.onnx", root / "out", root / "tmp"
        model.write_bytes(data)
        (root / "weights.bin").write_bytes(b"\0" * 64)  # for external-data mutations that name it
        tmp.mkdir()
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "EDGEC_NO_CACHE": "1", "TMPDIR": str(tmp), **(extra_env or {})}
        args = ["build", str(model), "--target", "all", "--out", str(out)]
        args += ["--latency", "off"] if validate else ["--no-validate"]
        t0 = time.perf_counter()
        cpu = None
        if server is not None:
            rc, stderr, cpu = server.run(args, env, root, timeout)
        else:
            import resource

            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            try:
                r = subprocess.run([sys.executable, "-m", "edgec.cli", *args], capture_output=True, text=True,
                                   env=env, timeout=timeout, cwd=root)
                rc, stderr = r.returncode, r.stderr + r.stdout
            except subprocess.TimeoutExpired as e:
                rc, stderr = None, f"timeout after {timeout} s; {(e.stderr or b'')[-2000:]!r}"
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # exact with one case at a time (--jobs 1)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        seconds = time.perf_counter() - t0
        bad = []
        if rc is None:
            bad.append("hang")
        if "[fuzz] the build left a process running" in stderr:
            bad.append("left a process running")
        elif rc not in DOCUMENTED:
            bad.append(f"exit {rc}")
        if "Traceback (most recent call last)" in stderr:
            bad.append("traceback")
        leftovers = sorted(p.name for p in tmp.iterdir() if p.name not in RUNTIME_FILES)
        if leftovers:
            bad.append(f"temp files left: {leftovers[:5]}")
        bad += _output_problems(out, rc)
        return CaseResult(base, seed, kind, what, rc, bad, stderr[-3000:], seconds, cpu)
    finally:
        shutil.rmtree(root, ignore_errors=True)
