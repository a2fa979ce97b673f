"""One registry helper behind every registry: duplicate check, notes, checks, discovery; int8 TFLite ops from it."""

from __future__ import annotations

import pytest

from edgec.registry import Registry


def test_every_registry_is_the_one_helper():
    from edgec.graph.passes import PASSES
    from edgec.lower.coreml.registry import REGISTRY as COREML
    from edgec.lower.tflite.registry import REGISTRY as TFLITE
    from edgec.runtimes.mil_ops import RULES as MIL
    from edgec.validate.opcost import _REGISTRY as COSTS

    for reg in (PASSES, COREML, TFLITE, MIL, COSTS):
        assert isinstance(reg, Registry), reg
        assert len(reg.load()) > 5, reg.what


def test_duplicates_are_refused_and_notes_default_to_the_docstring():
    reg = Registry("widgets")

    @reg.register("A", "B", check=lambda x: None)
    def a(x):
        """First line.

        More."""

    assert reg["A"].note == "First line." and reg["B"].fn is a and reg["A"].check(1) is None
    with pytest.raises(RuntimeError, match="two widgets registered for 'B'"):
        reg.register("B")(lambda x: x)
    assert reg.register("C", note="given", kind=1)(a) is a and reg["C"].note == "given" and reg["C"].flags == {"kind": 1}


def test_discovery_imports_every_module_of_the_package():
    import edgec.lower.coreml.ops  # noqa: F401
    from edgec.lower.coreml.registry import REGISTRY
    from edgec.runtimes.mil_ops import registry

    assert {"Conv", "Resize", "QuantizeLinear", "ReduceMean"} <= set(REGISTRY)
    assert {"conv", "classify", "constexpr_affine_dequantize", "softmax"} <= set(registry())


def test_an_int8_tflite_op_is_one_registration():
    from edgec.lower.tflite import qdq
    from edgec.lower.tflite.registry import REGISTRY, lowers

    assert "Sigmoid" in qdq.OWN_INT8 and "Reshape" in qdq.PASS_INT8 and "Reshape" in qdq.SAME_SCALE
    assert "Tanh" not in qdq.OWN_INT8
    lowers("int8.Tanh", check=lambda ctx: None)(lambda ctx: None)
    try:
        assert "Tanh" in qdq.OWN_INT8  # fold_qdq folds it, finish_qdq retags it, the estimator prices it as int8
        from edgec.lower.backend import int8_kernel_ops

        assert "Tanh" in int8_kernel_ops()
    finally:
        del REGISTRY["int8.Tanh"]
    assert "Tanh" not in qdq.OWN_INT8
