"""--validation-data reaches every numerics check: the float comparison on all three targets (ios through the MIL
interpreter), the reduced-precision accuracy gate (before the calibration folder's held-out files and seeded
random inputs), and a folder whose files do not fit the model's inputs is a one-paragraph error naming the file
and the input (exit 7, no traceback).

Each model has an input domain that seeded random data leaves, so the verdict shows which inputs were read:
- `_log_model`: Log of a positive signal; N(0, 1) inputs make the reference NaN (exit 12), real ones pass;
- `_unit_model`: inputs in [0, 1] (pixels, probabilities), calibrated on such data; N(0, 1) inputs saturate the
  int8 input quantizer (negatives clip to the calibrated minimum 0), so the gate fails on random data only.
"""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import api
from edgec.errors import ReferenceNotFinite, ValidationDataError

WIDTH = 32


def _dense(x: str, rng, n_in: int, n_out: int, name: str, act: bool = True):
    inits = [numpy_helper.from_array(rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out)).astype(np.float32), f"{name}_w"),
             numpy_helper.from_array(rng.normal(0, 0.1, n_out).astype(np.float32), f"{name}_b")]
    nodes = [helper.make_node("MatMul", [x, f"{name}_w"], [f"{name}_m"], name=f"{name}_matmul"),
             helper.make_node("Add", [f"{name}_m", f"{name}_b"], [f"{name}_a"], name=f"{name}_add")]
    if act:
        nodes.append(helper.make_node("Relu", [f"{name}_a"], [f"{name}_y"], name=f"{name}_relu"))
    return nodes, inits, nodes[-1].output[0]


def _model(first: list, first_out: str, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    n1, i1, h = _dense(first_out, rng, WIDTH, 64, "fc1")
    n2, i2, y = _dense(h, rng, 64, 8, "fc2", act=False)  # 8 outputs: no classifier (no top-k), cosine gates
    nodes = first + n1 + n2
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, WIDTH])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], i1 + i2)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _log_model() -> onnx.ModelProto:
    return _model([helper.make_node("Log", ["x"], ["logx"], name="log")], "logx")


def _unit_model() -> onnx.ModelProto:
    return _model([helper.make_node("Identity", ["x"], ["x0"], name="id")], "x0")


def _ids_model() -> onnx.ModelProto:
    """Token ids (int64) -> embedding table -> mean over the sequence."""
    table = numpy_helper.from_array(np.random.default_rng(0).normal(0, 1, (50, WIDTH)).astype(np.float32), "table")
    nodes = [helper.make_node("Gather", ["table", "x"], ["e"], name="embed"),
             helper.make_node("ReduceMean", ["e"], ["y"], name="pool", axes=[1], keepdims=0)]
    graph = helper.make_graph(nodes, "ids", [helper.make_tensor_value_info("x", TensorProto.INT64, [1, WIDTH])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, WIDTH])], [table])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _folder(path, n: int, low: float, high: float, seed: int, name: str = "x", shape=(1, WIDTH), dtype=np.float32):
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        np.savez(path / f"s{i:03d}.npz", **{name: rng.uniform(low, high, shape).astype(dtype)})
    return path


def _save(model, tmp_path, name):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _build(model, tmp_path, out, **kw):
    return api.build(model, api.BuildOptions(out_dir=tmp_path / out, latency="off", model_name="m", **kw))


def test_float_checks_read_the_folder_on_every_target(tmp_path):
    model = _save(_log_model(), tmp_path, "log")
    with pytest.raises(ReferenceNotFinite, match="'y'.*NaN/Inf"):  # N(0, 1) inputs: log of negatives
        _build(model, tmp_path, "random", target="ort-mobile")
    data = _folder(tmp_path / "val", 5, 0.5, 4.0, seed=1)
    outcome = _build(model, tmp_path, "real", target="all", validation_data=str(data))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    runs = {a.artifact.target: a.numerics for a in outcome.result.artifacts}
    assert set(runs) == {"android", "ios", "ort-mobile"}
    for target, n in runs.items():
        assert n.passed and n.samples == 5 and str(data) in n.data, (target, n.data)
    assert runs["ios"].ran_on == "mil-interpreter"  # no CoreML runtime on Linux: the repo's MIL interpreter
    ios = next(a for a in outcome.result.artifacts if a.artifact.target == "ios").artifact
    # CoreML's fp16 range probe (which ops stay fp32) ran on the same files
    assert any(n.startswith("fp16 overflow guard") and f"on the validation data ({data})" in n for n in ios.notes)


def test_int8_gate_reads_validation_data_before_held_out_and_random(tmp_path):
    model = _save(_unit_model(), tmp_path, "unit")
    # 4 calibration files: one would be held out, fewer than the 2 the gate needs, so it falls back to random
    calib = _folder(tmp_path / "calib", 4, 0.0, 1.0, seed=2)
    kw = dict(target="ort-mobile", quantize="int8", calibration=str(calib))
    random = _build(model, tmp_path, "random", **kw).result.artifacts[0]
    q = random.artifact.details["quantize"]["gate_inputs"]
    assert q["source"] == "seeded random" and q["samples"] == 8
    assert not random.numerics.passed and random.numerics.outputs["y"].cosine < 0.99  # saturated: -x clips to 0

    data = _folder(tmp_path / "val", 12, 0.0, 1.0, seed=3)
    real = _build(model, tmp_path, "real", validation_data=str(data), **kw).result.artifacts[0]
    assert real.numerics.passed, real.numerics.message
    assert real.numerics.outputs["y"].cosine > 0.99 and real.numerics.samples == 12
    manifest = json.loads((tmp_path / "real" / "manifest.json").read_text())["artifacts"][0]
    gate = manifest["details"]["quantize"]["gate_inputs"]
    assert gate["source"] == "validation data" and gate["samples"] == 12 and str(data) in gate["inputs"]
    assert str(data) in manifest["numerics"]["data"]
    assert any("accuracy checked on 12 validation sample(s)" in n for n in manifest["notes"])

    # a calibration folder with enough files: its held-out part gates, unless validation data is given
    calib = _folder(tmp_path / "calib20", 20, 0.0, 1.0, seed=4)
    kw["calibration"] = str(calib)
    held = _build(model, tmp_path, "held", **kw).result.artifacts[0]
    assert held.artifact.details["quantize"]["gate_inputs"]["source"] == "held-out calibration files"
    far = _folder(tmp_path / "far", 6, -3.0, 3.0, seed=5)  # outside the calibrated range: the folder decides
    outside = _build(model, tmp_path, "far", validation_data=str(far), **kw).result.artifacts[0]
    assert held.numerics.passed and not outside.numerics.passed
    assert outside.artifact.details["quantize"]["gate_inputs"]["samples"] == 6


@pytest.mark.parametrize("case", ["name", "shape", "dtype"])
def test_a_folder_that_does_not_fit_is_one_paragraph_naming_file_and_input(case, tmp_path):
    # float token ids for an int64 input (int32 or float64 data is cast: same kind or safe)
    model = _save(_ids_model() if case == "dtype" else _unit_model(), tmp_path, "m")
    bad = {"name": dict(name="pixels"), "shape": dict(shape=(1, 16)), "dtype": dict()}[case]
    data = _folder(tmp_path / "val", 2, 0.0, 1.0, seed=6, **bad)
    want = {"name": "has arrays ['pixels', 'extra'] but no array for input(s) 'x'",  # two arrays: names must match
            "shape": "has shape [1, 16] for input 'x', which expects [1, 32]",
            "dtype": "holds float32 data for input 'x', which is int64"}[case]
    if case == "name":  # a single-array file is taken for a single-input model whatever its name
        np.savez(data / "s000.npz", pixels=np.zeros((1, WIDTH), np.float32), extra=np.zeros(3, np.float32))
    for quantize in ("none", "int8-dynamic"):  # the float check, and the reduced-precision gate
        with pytest.raises(ValidationDataError) as e:
            _build(model, tmp_path, f"out-{quantize}", target="ort-mobile", quantize=quantize,
                   validation_data=str(data))
        msg = str(e.value)
        assert f"validation file {data / 's000.npz'} {want}" in msg and "\n" not in msg, msg
        assert e.value.exit_code == 7


def test_cli_validation_data_error_exit_code_no_traceback(cli, tmp_path):
    from edgec.cli import app

    model = _save(_unit_model(), tmp_path, "unit")
    data = _folder(tmp_path / "val", 2, 0.0, 1.0, seed=7, shape=(1, 16))
    r = cli.invoke(app, ["build", str(model), "--target", "android", "--latency", "off", "--out", str(tmp_path / "o"),
                         "--validation-data", str(data)])
    assert r.exit_code == 7, r.output
    msg = " ".join(r.stderr.split())
    assert "Traceback" not in r.output and "validation data error" in msg and "s000.npz" in msg and "'x'" in msg
    assert not (tmp_path / "o").exists()  # nothing half-written


@pytest.mark.parametrize("form", ["div", "lpnorm", "logits"])
def test_an_l2_normalized_output_is_an_embedding_not_a_classifier(form):
    """A sentence embedding [1, 384] is shaped like logits, but its largest component is no class: gated on
    cosine only (on real data a top-1 gate would fail MiniLM's int8 embedding at cosine 0.992)."""
    from edgec.runtimes.outputs import output_accuracy, output_kinds

    if form == "div":
        nodes = [helper.make_node("ReduceL2", ["x"], ["n"], axes=[1], keepdims=1),
                 helper.make_node("Clip", ["n", "eps"], ["c"]), helper.make_node("Div", ["x", "c"], ["y"])]
    elif form == "lpnorm":
        nodes = [helper.make_node("LpNormalization", ["x"], ["y"], axis=1, p=2)]
    else:  # Div by something else (a temperature): still a classifier's logits
        nodes = [helper.make_node("Div", ["x", "eps"], ["y"])]
    graph = helper.make_graph(nodes, "e", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
                              [numpy_helper.from_array(np.array(1e-12, np.float32), "eps")])
    kinds = output_kinds(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    rng = np.random.default_rng(0)
    refs = [rng.normal(size=(1, 64)) for _ in range(4)]
    acts = [r + rng.normal(0, 0.5, r.shape) for r in refs]  # moves the argmax, not the direction much
    m, kind = output_accuracy("y", refs, acts, kinds)
    if form == "logits":
        assert kind.name == "classifier" and m.top1 is not None
    else:
        assert kind.name == "embedding" and m.top1 is None and m.kind == "embedding"


def test_edgec_validate_gates_a_quantized_artifact_on_the_builds_validation_data(tmp_path):
    model = _save(_unit_model(), tmp_path, "unit")
    calib = _folder(tmp_path / "calib", 4, 0.0, 1.0, seed=2)
    data = _folder(tmp_path / "val", 12, 0.0, 1.0, seed=3)
    built = _build(model, tmp_path, "out", target="ort-mobile", quantize="int8", calibration=str(calib),
                   validation_data=str(data)).result.artifacts[0]
    again = api.validate_artifact(model, built.final_path)  # the manifest names the folder
    assert again.numerics.passed and again.numerics.samples == 12 and str(data) in again.numerics.data
    assert again.numerics.outputs["y"].cosine == built.numerics.outputs["y"].cosine
    far = _folder(tmp_path / "far", 6, -3.0, 3.0, seed=5)
    other = api.validate_artifact(model, built.final_path, validation_data=str(far))
    assert not other.numerics.passed and other.numerics.samples == 6


def test_ranged_lengths_read_the_files_at_their_length_and_refuse_a_folder_at_none(tmp_path):
    """--input-shape x=1,4..16: the artifact is checked at lengths 4, 10 and 16; the folder's files are used at the
    length they have (random ids elsewhere, said so), and a folder with no file at a checked length is refused."""
    model = _ids_model()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "L"
    path = _save(model, tmp_path, "ids")
    data = tmp_path / "val"
    data.mkdir()
    for i in range(3):
        np.save(data / f"s{i}.npy", np.random.default_rng(i).integers(0, 50, (1, 16)))
    kw = dict(target="ort-mobile", input_shapes=["x=1,4..16"], validation_data=str(data))
    a = _build(path, tmp_path, "ok", **kw).result.artifacts[0]
    rows = {r["shapes"]["x"][1]: r["inputs"] for r in a.artifact.details["numerics_by_length"]}
    assert set(rows) == {4, 10, 16} and rows[16].startswith("3 file(s) at these shapes") and a.numerics.passed
    assert rows[4].startswith("seeded random") and f"no file of {data} has these shapes" in rows[4]
    for f in data.iterdir():
        np.save(f, np.load(f)[:, :7])  # length 7: inside the range, but no checked length
    with pytest.raises(ValidationDataError, match=r"no file at any length this build checks.*\[1, 10\]"):
        _build(path, tmp_path, "none", **kw)
