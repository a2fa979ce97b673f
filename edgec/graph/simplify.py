"""onnxsim simplification (constant folding, shape inference, dead code) with a check that outputs still agree."""

from __future__ import annotations

import onnx

from edgec.errors import ShapeError
from edgec.validate.inputs import input_specs, random_inputs
from edgec.validate.numerics import compare
from edgec.validate.runners.host_ort import OrtRunner


def simplify(model: onnx.ModelProto, shapes: dict[str, list[int]], model_path: str = "model") -> tuple[onnx.ModelProto, str]:
    """Returns the simplified model and a one-line note for the report."""
    import onnxsim

    try:
        simplified, _ = onnxsim.simplify(model, overwrite_input_shapes=shapes, check_n=0)
    except Exception as e:  # onnxsim raises RuntimeError/ValueError/its own errors from C++
        # Simplification is an optimisation: a model it cannot handle still builds, unsimplified, and says so.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return _with_shapes(model, model_path), f"onnxsim could not simplify the model ({first}); built unsimplified"
    del simplified.metadata_props[:]  # onnxsim adds entries that would leak into artifacts
    check_outputs_agree(model, simplified, model_path)
    return _with_shapes(simplified, model_path), "onnxsim: simplified, outputs checked against the original"


def _with_shapes(model: onnx.ModelProto, model_path: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as e:
        raise ShapeError(f"{model_path}: ONNX shape inference failed after fixing the input shapes: {e}") from None


def check_outputs_agree(before: onnx.ModelProto, after: onnx.ModelProto, model_path: str) -> None:
    """The simplified model must compute what the original did (seeded inputs, ONNX Runtime on both)."""
    feeds = random_inputs(input_specs(after), seed=1234, samples=1)
    ref = [OrtRunner(before, threads=2).run(f) for f in feeds]
    got = [OrtRunner(after, threads=2).run(f) for f in feeds]
    result = compare(ref, got, ran_on="onnxruntime", min_cosine=0.99999)
    if not result.passed:
        raise ShapeError(
            f"{model_path}: onnxsim changed the model's outputs ({result.message}). This is a simplifier bug; "
            f"please report it with the model."
        )
