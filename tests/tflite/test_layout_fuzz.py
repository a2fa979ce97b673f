"""Random conv nets with layout-sensitive glue (broadcast constants, Concat/Softmax/ReduceMean/Slice/Pad on
random axes, Transposes, channel-shuffle and split/merge Reshapes, Flatten -> Gemm) lowered through the layout
pass must match ONNX Runtime: guards the axis remapping and the transpose moves."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.tflite.helpers import chain, run_both


def _model(seed):
    r = np.random.default_rng(seed)
    C = 4
    consts = {"w0": r.standard_normal((C, 3, 3, 3)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["t0"], pads=[1, 1, 1, 1])]
    cur, shape, k = "t0", [1, C, 6, 6], 0
    for i in range(6):
        k += 1
        out = f"t{k}"
        choice = r.integers(0, 11)
        if choice == 0:
            nodes.append(helper.make_node("Relu", [cur], [out]))
        elif choice == 1:
            cshape = [[shape[1], 1, 1], [1, shape[1], 1, 1], [shape[3]], [1, 1, shape[2], 1], [1], list(shape)][r.integers(0, 6)]
            consts[f"c{k}"] = r.standard_normal(cshape).astype(np.float32)
            nodes.append(helper.make_node(["Add", "Mul", "Sub"][r.integers(0, 3)], [cur, f"c{k}"], [out]))
        elif choice == 2:
            ax = int(r.integers(0, 4))
            nodes.append(helper.make_node("Concat", [cur, cur], [out], axis=ax))
            shape = list(shape); shape[ax] *= 2
        elif choice == 3:
            nodes.append(helper.make_node("Softmax", [cur], [out], axis=int(r.integers(-4, 4))))
        elif choice == 4:
            ax = int(r.integers(0, 4))
            consts[f"a{k}"] = np.array([ax], np.int64)
            nodes.append(helper.make_node("ReduceMean", [cur, f"a{k}"], [out], keepdims=1))
            shape = list(shape); shape[ax] = 1
        elif choice == 5:
            ax = int(r.integers(1, 4))
            if shape[ax] < 2:
                k -= 1; continue
            consts[f"s{k}"], consts[f"e{k}"], consts[f"ax{k}"] = np.array([1], np.int64), np.array([shape[ax]], np.int64), np.array([ax], np.int64)
            nodes.append(helper.make_node("Slice", [cur, f"s{k}", f"e{k}", f"ax{k}"], [out]))
            shape = list(shape); shape[ax] -= 1
        elif choice == 6:
            pads = [int(v) for v in r.integers(0, 2, 8)]
            consts[f"p{k}"] = np.array(pads, np.int64)
            nodes.append(helper.make_node("Pad", [cur, f"p{k}"], [out], mode=["constant", "edge"][r.integers(0, 2)]))
            shape = [shape[i] + pads[i] + pads[i + 4] for i in range(4)]
        elif choice == 7:
            perm = [int(p) for p in r.permutation(4)]
            nodes.append(helper.make_node("Transpose", [cur], [out], perm=perm))
            shape = [shape[p] for p in perm]
        elif choice == 9:
            if shape[1] % 2:
                k -= 1; continue
            g = 2
            consts[f"r5{k}"] = np.array([shape[0], g, shape[1] // g, shape[2], shape[3]], np.int64)
            consts[f"r4{k}"] = np.array(shape, np.int64)
            nodes += [helper.make_node("Reshape", [cur, f"r5{k}"], [out + "a"]),
                      helper.make_node("Transpose", [out + "a"], [out + "b"], perm=[0, 2, 1, 3, 4]),
                      helper.make_node("Reshape", [out + "b", f"r4{k}"], [out])]
        elif choice == 10:
            consts[f"u{k}"] = np.array([shape[0], shape[1] * shape[2], shape[3]], np.int64)
            nodes.append(helper.make_node("Reshape", [cur, f"u{k}"], [out + "m"]))
            consts[f"v{k}"] = np.array(shape, np.int64)
            nodes.append(helper.make_node("Reshape", [out + "m", f"v{k}"], [out]))
        else:
            if shape[0] != 1 or shape[1] < 1 or any(s < 3 for s in shape[2:]):
                k -= 1; continue
            consts[f"w{k}"] = r.standard_normal((C, shape[1], 3, 3)).astype(np.float32)
            nodes.append(helper.make_node("Conv", [cur, f"w{k}"], [out]))
            shape = [1, C, shape[2] - 2, shape[3] - 2]
        cur = out
    if r.integers(0, 2):
        consts["fc"] = r.standard_normal((int(np.prod(shape[1:])), 5)).astype(np.float32)
        nodes += [helper.make_node("Flatten", [cur], ["flat"]), helper.make_node("Gemm", ["flat", "fc"], ["logits"])]
        cur = "logits"
    return chain(nodes, {"x": [1, 3, 6, 6]}, [cur], consts, opset=18), nodes


@pytest.mark.parametrize("seed", range(60))
def test_random_layout_glue_matches_ort(seed):
    model, nodes = _model(seed)
    ref, got, _ = run_both(model)
    for k in ref:
        assert got[k].shape == ref[k].shape, [n.op_type for n in nodes]
        np.testing.assert_allclose(got[k], ref[k], atol=1e-3 * max(1.0, float(np.abs(ref[k]).max())), rtol=1e-3,
                                   err_msg=str([n.op_type for n in nodes]))
