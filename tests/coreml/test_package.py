"""The .mlpackage: deterministic bytes, metadata, deployment target, compute precision."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from coremltools.proto import MIL_pb2

from edgec import __version__
from edgec.errors import LoweringError
from edgec.hashing import sha256_path
from tests.conftest import conv_model
from tests.coreml.helpers import backend, context, lower, mil_ops, mil_spec

_SCRIPT = """
import sys, pathlib
from tests.conftest import conv_model
from tests.coreml.helpers import lower
from edgec.hashing import sha256_path
print(sha256_path(lower(conv_model(), pathlib.Path(sys.argv[1]), precision=sys.argv[2]).path))
"""


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_two_builds_are_byte_identical(tmp_path, precision):
    a = lower(conv_model(), tmp_path / "a", precision=precision)
    b = lower(conv_model(), tmp_path / "b", precision=precision)
    files = sorted(p.relative_to(a.path) for p in a.path.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b.path) for p in b.path.rglob("*") if p.is_file())
    for f in files:
        assert (a.path / f).read_bytes() == (b.path / f).read_bytes(), f
    # and in a fresh process (coremltools' name counters and uuid4 ids start over there)
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "c"), precision], capture_output=True,
                         text=True, check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.stdout.strip().splitlines()[-1] == sha256_path(a.path)


def test_manifest_ids_are_derived_not_random(tmp_path):
    art = lower(conv_model(), tmp_path)
    manifest = json.loads((art.path / "Manifest.json").read_text())
    assert manifest["rootModelIdentifier"] in manifest["itemInfoEntries"]
    assert {e["path"] for e in manifest["itemInfoEntries"].values()} == {"com.apple.CoreML/model.mlmodel",
                                                                          "com.apple.CoreML/weights"}


def test_metadata(tmp_path):
    from edgec.config.loader import load_profile

    profile = load_profile("iphone-15-pro").model_copy(update={"metadata": {
        "author": "Edge Team", "license": "Apache-2.0", "version": "1.2.3", "description": "tiny conv net"}})
    ctx = context(tmp_path)
    ctx = type(ctx)(**{**ctx.__dict__, "profile": profile, "source_sha256": "ab" * 32})
    art = backend().lower(conv_model(), ctx)
    meta = mil_spec(art.path).description.metadata
    assert (meta.author, meta.license, meta.versionString, meta.shortDescription) == (
        "Edge Team", "Apache-2.0", "1.2.3", "tiny conv net")
    user = dict(meta.userDefined)
    assert user["edgec.version"] == __version__
    assert user["edgec.source_sha256"] == "ab" * 32
    assert user["edgec.profile"] == "iphone-15-pro"
    assert json.loads(user["edgec.name_map"])["inputs"] == {"images": "images"}
    assert "com.github.apple.coremltools.conversion_date" not in user  # changes daily: breaks determinism


@pytest.mark.parametrize("target, spec_version, opset", [("iOS15", 6, "CoreML5"), ("iOS16", 7, "CoreML6"),
                                                         ("iOS17", 8, "CoreML7")])
def test_deployment_target_sets_spec_and_opset(tmp_path, target, spec_version, opset):
    art = lower(conv_model(), tmp_path, coreml_minimum_deployment_target=target)
    spec = mil_spec(art.path)
    assert spec.specificationVersion == spec_version
    assert list(spec.mlProgram.functions["main"].block_specializations) == [opset]
    assert art.details["deployment_target"] == target


def test_unknown_deployment_target_is_a_lowering_error(tmp_path):
    with pytest.raises(LoweringError, match="iOS14"):
        lower(conv_model(), tmp_path, coreml_minimum_deployment_target="iOS14")


def _float_types(path) -> set[int]:
    return {o.outputs[0].type.tensorType.dataType for o in mil_ops(path) if o.type in ("conv", "relu", "batch_norm")}


def test_compute_precision_follows_the_build(tmp_path):
    fp32 = lower(conv_model(), tmp_path, precision="fp32")
    fp16 = lower(conv_model(), tmp_path, precision="fp16")
    assert _float_types(fp32.path) == {MIL_pb2.FLOAT32}
    assert _float_types(fp16.path) == {MIL_pb2.FLOAT16}
    assert (fp32.precision, fp16.precision) == ("fp32", "fp16")
    assert fp16.details["compute_precision"] == "fp16"


def test_unquantized_graph_gets_the_targets_fp16(tmp_path):
    """ctx.precision "fp32" means "not quantized", not "FLOAT32 compute": ios builds are fp16 by default."""
    art = lower(conv_model(), tmp_path, precision=None, ctx_precision="fp32")
    assert art.precision == "fp16" and _float_types(art.path) == {MIL_pb2.FLOAT16}
    assert any("fp16 compute (target 'ios' coreml_compute_precision)" in n for n in art.notes)


def test_compute_precision_sources(tmp_path):
    from edgec.lower.coreml.backend import compute_precision

    # quantize stage asked for fp16: wins over a profile that says fp32
    assert compute_precision(context(tmp_path, precision="fp32", ctx_precision="fp16"))[0] == "fp16"
    # profile's coreml.compute_precision wins over the target default
    assert compute_precision(context(tmp_path, precision="fp32")) == (
        "fp32", "profile 'iphone-15-pro' coreml.compute_precision")
    # neither: the target's default
    assert compute_precision(context(tmp_path, precision=None))[0] == "fp16"
    assert compute_precision(context(tmp_path, precision=None, coreml_compute_precision="fp32"))[0] == "fp32"
    # activation Q/DQ emulated as float arithmetic (below iOS17, the profile's choice) computes in fp32 unless the
    # profile says otherwise; dropped (the default there), weight-only QDQ and iOS17+ (MIL quantize/dequantize,
    # int8 on the Neural Engine) keep the target's fp16
    from tests.coreml.test_quant import _qdq_model

    emulate = context(tmp_path, precision=None, ctx_precision="int8", emulate_int8=True)
    assert compute_precision(emulate, _qdq_model(static=True))[0] == "fp32"
    assert compute_precision(emulate, _qdq_model(static=False))[0] == "fp16"
    ctx = context(tmp_path, precision=None, ctx_precision="int8")
    assert compute_precision(ctx, _qdq_model(static=True))[0] == "fp16"
    ios17 = context(tmp_path, precision=None, ctx_precision="int8", coreml_minimum_deployment_target="iOS17")
    assert compute_precision(ios17, _qdq_model(static=True))[0] == "fp16"
    assert compute_precision(context(tmp_path, precision="fp16", ctx_precision="int8"), _qdq_model(static=True)) == (
        "fp16", "profile 'iphone-15-pro' coreml.compute_precision")
