"""Where a trained classifier's quantization error lives, and how much smaller the weight error must be for the
top-1 bar (issue 19: >= 0.98 agreement with fp32 on held-out photo crops).

Per model: the quantize stage's QDQ graph (`quantize.activations`, default int16; calibrated on the calibration
photos' crops, tests/photos.py) in ONNX Runtime on the held-out photos' crops, against fp32:

  full graph          the QDQ graph as the stage writes it
  activations alone   the same graph with every weighted node reading its float weights and bias
  weights alone       the same graph with its activation Q/DQ pairs dropped (graph.passes.without_activation_qdq)
  weight error x k    float activations, weights w + k * (w_int8 - w): the rounding error scaled by k (k = 1 is
                      "weights alone"); k = 0.5 is what one more bit of weight precision would give at best

Each row: logit error (||out - fp32|| / ||fp32||), top-1 agreement and the number of flipped crops, and for the
full graph the fp32 top-1/top-2 logit margins of the crops that flip.

    python bench/weight_error.py [--models efficientnet_lite0,efficientnet_lite1] [--activations int16|int8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgec.config.loader import load_profile  # noqa: E402
from edgec.graph.passes import without_activation_qdq  # noqa: E402
from edgec.graph.view import producers  # noqa: E402
from edgec.quantize import int8  # noqa: E402
from edgec.quantize.bias_correction import dequantize_constant  # noqa: E402
from edgec.quantize.stage import name_nodes, quantize  # noqa: E402
from edgec.runtimes.host_ort import OrtRunner  # noqa: E402
from tests.photos import CALIB_PHOTOS, EVAL_PHOTOS, photo_inputs  # noqa: E402
from tests.quantize.helpers import target_profile  # noqa: E402
from tests.trained_zoo import TRAINED, input_shape, trained_model  # noqa: E402
from bench.quantize_trained import logits, write_calib  # noqa: E402

WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
SCALES = (1.0, 0.5, 0.33, 0.25)


def outputs(model: onnx.ModelProto, xs: list[np.ndarray]) -> np.ndarray:
    return logits(OrtRunner(model, threads=1), xs)  # OrtRunner leaves float weights float (KEEPS_FLOAT_NODES_FLOAT)


def row(label: str, ref: np.ndarray, out: np.ndarray) -> str:
    flips = int((out.argmax(1) != ref.argmax(1)).sum())
    err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
    return f"| {label} | {err:.4f} | {1 - flips / len(ref):.3f} | {flips} |"


def weight_pairs(qdq: onnx.ModelProto, float_model: onnx.ModelProto):
    """(node in qdq, input index, the DequantizeLinear feeding it, the float initializer) for every weight and bias
    the stage quantized: nodes are matched by name (the stage names them), inputs by position."""
    made = producers(qdq)
    consts = {t.name for t in qdq.graph.initializer}
    floats = {t.name: t for t in float_model.graph.initializer}
    by_name = {n.name: n for n in float_model.graph.node}
    for node in qdq.graph.node:
        fnode = by_name.get(node.name)
        if node.op_type not in WEIGHTED or fnode is None:
            continue
        for i in range(1, min(len(node.input), len(fnode.input))):
            dq = made.get(node.input[i])
            if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in consts \
                    and fnode.input[i] in floats:
                yield node, i, dq, floats[fnode.input[i]]


def with_weights(qdq: onnx.ModelProto, float_model: onnx.ModelProto, k: float | None) -> onnx.ModelProto:
    """`qdq` with every quantized weight and bias read as a float initializer: the float value (k None), or
    float + k * (dequantized - float)."""
    out = onnx.ModelProto.FromString(qdq.SerializeToString())
    by_name = {n.name: n for n in out.graph.node}
    inits = {t.name: t for t in qdq.graph.initializer}
    for node, i, dq, tensor in list(weight_pairs(qdq, float_model)):
        w = numpy_helper.to_array(tensor).astype(np.float64)
        value = w if k is None else w + k * (dequantize_constant(dq, inits) - w)
        name = f"{node.name}_input{i}_float"
        out.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
        by_name[node.name].input[i] = name
    return out


def bench_model(name: str, width: str, work: Path) -> None:
    size = input_shape(name)[-1]
    calib = work / "calib"
    write_calib(calib, *photo_inputs(CALIB_PHOTOS, size))
    profile = target_profile(work, None, settings={"mode": "int8", "activations": width,
                                                   "calibration": {"source": str(calib), "samples": 128}})
    model = onnx.load(trained_model(name))
    qdq, _ = quantize(model, load_profile(str(profile)))
    # the stage's float graph, rebuilt the way the stage builds it: the names the QDQ graph's nodes carry
    opset = int8.QDQ16_OPSET if width == "int16" else int8.QDQ_OPSET
    pre = int8.pre_process(int8.to_qdq_opset(model, opset), work)
    name_nodes(pre)
    xs, labels = photo_inputs(EVAL_PHOTOS, size)
    ref = outputs(model, xs)
    full = outputs(qdq, xs)
    print(f"\n{name}, {width} activations, {len(xs)} held-out crops\n")
    print("| graph | logit error | top-1 agreement | flips |\n|---|---|---|---|")
    print(row("full graph", ref, full))
    print(row("activations alone (float weights)", ref, outputs(with_weights(qdq, pre, None), xs)))
    print(row("weights alone (float activations)", ref, outputs(without_activation_qdq(qdq)[0], xs)))
    floats = without_activation_qdq(with_weights(qdq, pre, None))[0]
    print(row("fp32 (the stage's float graph)", ref, outputs(floats, xs)))
    for k in SCALES[1:]:
        print(row(f"weight error x {k}", ref, outputs(without_activation_qdq(with_weights(qdq, pre, k))[0], xs)))
    top = np.sort(ref, 1)
    margins = {labels[i]: round(float(top[i, -1] - top[i, -2]), 3) for i in np.where(full.argmax(1) != ref.argmax(1))[0]}
    print(f"\nfull graph flips (fp32 top-1/top-2 logit margin): {margins}; "
          f"held-out crops with a margin < 0.05: {int((top[:, -1] - top[:, -2] < 0.05).sum())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(TRAINED))
    ap.add_argument("--activations", default="int16", choices=["int16", "int8"])
    args = ap.parse_args()
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="edgec-weight-error-") as tmp:
            bench_model(name, args.activations, Path(tmp))


if __name__ == "__main__":
    main()
