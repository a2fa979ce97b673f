"""onnxsim simplification (constant folding, shape inference, dead code) with a check that outputs still agree."""

from __future__ import annotations


import onnx
from onnx import numpy_helper

from edgec.errors import EdgecError, LoweringError, ShapeError
from edgec.graph.inputs import input_domains, input_specs, random_inputs
from edgec.graph.view import constant_value
from edgec.runtimes.numerics import compare
from edgec.runtimes.host_ort import OrtRunner
from edgec.runtimes.native_log import capture_native_output


def simplify(model: onnx.ModelProto, shapes: dict[str, list[int]], model_path: str = "model",
             inputs: dict | None = None, dynamic: set[str] = frozenset()) -> tuple[onnx.ModelProto, str]:
    """Returns the simplified model and a one-line note for the report. `dynamic`: inputs whose dynamic dims stay
    (onnxsim folds only what does not depend on them; the check runs at `shapes`)."""
    import onnxsim

    feed_shapes = shapes
    shapes = {k: v for k, v in shapes.items() if k not in dynamic}
    try:
        # onnxsim's C++ prints "WARNING: failed to run <op>" for nodes it cannot fold: report lines, not terminal
        with capture_native_output() as said:
            simplified, _ = onnxsim.simplify(model, overwrite_input_shapes=shapes, check_n=0)
            if _new_domains(model, simplified):  # contrib-op fusions: again without them (or without any fusion)
                simplified, _ = onnxsim.simplify(model, overwrite_input_shapes=shapes, check_n=0,
                                                 skipped_optimizers=list(CONTRIB_FUSIONS))
                if _new_domains(model, simplified):
                    simplified, _ = onnxsim.simplify(model, overwrite_input_shapes=shapes, check_n=0,
                                                     perform_optimization=False)
    except Exception as e:  # onnxsim raises RuntimeError/ValueError/its own errors from C++
        # Simplification is an optimisation: a model it cannot handle still builds, unsimplified, and says so.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return _with_shapes(model, model_path), f"onnxsim could not simplify the model ({first}); built unsimplified" \
            + _said(said)
    del simplified.metadata_props[:]  # onnxsim adds entries that would leak into artifacts
    try:
        agree, detail = check_outputs_agree(model, simplified, inputs, feed_shapes)
    except Exception as e:  # noqa: BLE001  (the original itself does not load or run on seeded random inputs)
        # ORT cannot load it (LoweringError: its refusal is named when the target lowers), or Col2Im/CumSum/
        # AffineGrid take shapes or axes as integer inputs, which random values make invalid: the result cannot be
        # checked, so build the original. Any other edgec error (input domains) stands; with float inputs only,
        # the model itself does not run at these shapes: the caller's shape error.
        if isinstance(e, EdgecError) and not isinstance(e, LoweringError):
            raise
        if not isinstance(e, LoweringError) and not any(t.elem_type in _INT_TYPES for t in _input_types(model)):
            raise
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        return _with_shapes(model, model_path), (f"onnxsim's result could not be checked (the original does not "
                                                 f"run on seeded random inputs: {first}); built unsimplified")
    if not agree:
        # the un-simplified graph still builds, and every artifact is validated against the original anyway
        return _with_shapes(model, model_path), f"onnxsim changed the model's outputs ({detail}); built unsimplified"
    return _with_shapes(simplified, model_path), "onnxsim: simplified, outputs checked against the original" + (
        f" ({detail})" if detail else "") + _said(said)


def _said(lines: list[str], shown: int = 3) -> str:
    """onnxsim's own output for the report note (it left those nodes unfolded; the build does not depend on it)."""
    if not lines:
        return ""
    more = f" and {len(lines) - shown} more" if len(lines) > shown else ""
    return f"; onnxsim printed: {' | '.join(lines[:shown])}{more}"


# onnxsim passes that fuse standard ops into ONNX Runtime contrib ops (com.microsoft Attention, GQA, rotary...):
# only ORT runs those, and every edgec target lowers the standard graph (detr_head's cross-attention came back
# as one com.microsoft::Attention node that TFLite and CoreML refused)
CONTRIB_FUSIONS = ("fuse_attention", "fuse_gqa", "fuse_qkv", "fuse_rope", "fuse_gelu", "fuse_rms_norm")


def _new_domains(before: onnx.ModelProto, after: onnx.ModelProto) -> set[str]:
    domains = {n.domain for n in before.graph.node}
    return {n.domain for n in after.graph.node if n.domain not in domains and n.domain not in ("", "ai.onnx")}


def _with_shapes(model: onnx.ModelProto, model_path: str) -> onnx.ModelProto:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as e:
        raise ShapeError(f"{model_path}: ONNX shape inference failed after fixing the input shapes: {e}") from None
    constants_to_initializers(inferred)
    return inferred


def constants_to_initializers(model: onnx.ModelProto) -> int:
    """Top-level Constant nodes become initializers, like the constants onnxsim folds: paddle2onnx writes its
    constants as Constant nodes, which onnxsim keeps (PP-OCR det: 197 of them), and backends then see two kinds
    of constant (CoreML refused det's empty Resize roi as a Constant node; as an initializer it is fine).
    Constants that are graph outputs, and string or sparse ones, stay nodes. Returns how many were moved."""
    outputs = {o.name for o in model.graph.output}
    keep, moved = [], []
    for node in model.graph.node:
        array = constant_value(node)
        if array is None or node.output[0] in outputs:
            keep.append(node)
            continue
        moved.append(numpy_helper.from_array(array, node.output[0]))
    if moved:
        del model.graph.node[:]
        model.graph.node.extend(keep)
        model.graph.initializer.extend(moved)
    return len(moved)


STRICT_COSINE = 0.99999
# onnxsim folds constants and BatchNorms into neighbours, i.e. re-associates fp32 arithmetic; it may differ from
# the original by this many times what ONNX Runtime's own graph optimizations change on the same inputs
NOISE_FACTOR = 10


def check_outputs_agree(before: onnx.ModelProto, after: onnx.ModelProto, inputs: dict | None = None,
                        shapes: dict[str, list[int]] | None = None) -> tuple[bool, str]:
    """(agree, detail): does the simplified model compute what the original did (seeded inputs, ONNX Runtime on
    both)? detail says what differs, or that the outputs passed only within the float noise.
    Outputs within STRICT_COSINE pass at once. Otherwise the gate is relative to the float noise of the
    original itself, measured as ONNX Runtime with graph optimizations off vs on: some outputs are not
    reproducible to 1e-5 in fp32 at all (PP-OCR det's sigmoid map on N(0,1) inputs sits in the sigmoid's tail,
    ~1e-4, where ORT's logistic rounds to steps of 2**-25: optimizations off vs on gives cosine 0.99994 with
    logits that agree to 3e-7)."""
    # the values validation feeds too (token ids within their table, 0/1 masks): edgec.validate.inputs
    feeds = random_inputs(input_specs(after, shapes), seed=1234, samples=1, domains=input_domains(before, inputs))
    ref = [OrtRunner(before, threads=2).run(f) for f in feeds]
    got = [OrtRunner(after, threads=2).run(f) for f in feeds]
    result = compare(ref, got, ran_on="onnxruntime", min_cosine=STRICT_COSINE)
    if result.passed:
        return True, ""
    unoptimized = [OrtRunner(before, threads=2, level="disable").run(f) for f in feeds]
    noise = compare(ref, unoptimized, ran_on="onnxruntime", min_cosine=STRICT_COSINE)
    problems, within = [], []
    for name, m in result.outputs.items():
        floor = noise.outputs[name]
        allowed = max(1 - STRICT_COSINE, NOISE_FACTOR * (1 - floor.cosine)) if floor.finite else 1 - STRICT_COSINE
        line = (f"output '{name}' cosine {m.cosine:.6f} vs {1 - allowed:.6f} allowed; ONNX Runtime's own "
                f"optimizations off vs on give {floor.cosine:.6f}")
        (problems if not m.finite or 1 - m.cosine > allowed else within).append(line)
    if problems:
        return False, "; ".join(problems)
    return True, "within the float noise: " + "; ".join(within)


_INT_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.INT16, onnx.TensorProto.INT8,
              onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64}


def _input_types(model: onnx.ModelProto):
    """The tensor types of the graph's real inputs (not initializers)."""
    inits = {t.name for t in model.graph.initializer}
    return [i.type.tensor_type for i in model.graph.input if i.name not in inits and i.type.HasField("tensor_type")]

