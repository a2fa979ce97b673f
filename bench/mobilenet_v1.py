"""MobileNetV1 1.0 224 (Howard et al. 2017, arXiv:1704.04861, Table 1), written as ONNX with seeded random weights.

The architecture of TensorFlow's `mobilenet_v1_1.0_224` that TFLite's published benchmarks time: a 3x3 stride-2
conv to 32 channels, then 13 depthwise-3x3 + pointwise-1x1 pairs (ReLU6 after each conv, batch norm folded into
the conv as TFLite's converter does), a 7x7 average pool and a 1x1 conv to 1001 classes, then softmax. 569M
multiply-adds, 4.2M weights. Latency does not depend on the weights, so none are downloaded.

    python bench/mobilenet_v1.py OUT.onnx
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# (output channels, stride) of the 13 depthwise-separable blocks (Table 1 of the paper)
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
          (512, 1), (1024, 2), (1024, 1)]


def build(size: int = 224, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def conv(x: str, cin: int, cout: int, k: int, stride: int, group: int, name: str, relu6: bool = True) -> str:
        w = rng.normal(0, (2.0 / (k * k * cin / group)) ** 0.5, (cout, cin // group, k, k)).astype(np.float32)
        b = rng.normal(0, 0.01, cout).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")])
        pad = k // 2
        nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_c"], kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[pad] * 4, group=group))
        if not relu6:
            return f"{name}_c"
        nodes.append(helper.make_node("Clip", [f"{name}_c", "zero", "six"], [f"{name}_r"]))
        return f"{name}_r"

    inits += [numpy_helper.from_array(np.array(0, np.float32), "zero"),
              numpy_helper.from_array(np.array(6, np.float32), "six")]
    x = conv("input", 3, 32, 3, 2, 1, "conv0")
    cin = 32
    for i, (cout, stride) in enumerate(BLOCKS, 1):
        x = conv(x, cin, cin, 3, stride, cin, f"dw{i}")
        x = conv(x, cin, cout, 1, 1, 1, f"pw{i}")
        cin = cout
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"]))
    x = conv("pool", cin, 1001, 1, 1, 1, "logits", relu6=False)
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    nodes.append(helper.make_node("Softmax", ["flat"], ["probs"], axis=1))
    graph = helper.make_graph(nodes, "mobilenet_v1_1.0_224",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 1001])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgec-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def path(cache_dir: Path) -> Path:
    """The model in `cache_dir`, written once (deterministic: same seed, same bytes)."""
    out = Path(cache_dir) / "mobilenet_v1_1.0_224.onnx"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".tmp-{out.name}")
        onnx.save(build(), str(tmp))
        tmp.rename(out)
    return out


if __name__ == "__main__":
    onnx.save(build(), sys.argv[1])
