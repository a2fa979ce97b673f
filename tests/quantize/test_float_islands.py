"""quantize.target's candidates: float islands cut into an already-calibrated QDQ graph (islands.with_float_islands)
instead of re-quantizing per candidate; and the search's size bound and island growth."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgec.config.models import QuantTarget
from edgec.errors import QuantizationError
from edgec.quantize import int8
from edgec.quantize.islands import float_weights, neighbours, with_float_islands
from edgec.quantize.sensitivity import NodeSensitivity
from edgec.quantize.target import Score, search

from .helpers import classifier


class _Reader:
    def __init__(self, xs):
        self._it = iter([{"x": x} for x in xs])

    def get_next(self):
        return next(self._it, None)


def _clipped() -> onnx.ModelProto:
    """helpers.classifier with its Relus as Clip(0, 6): ORT's quantizer folds both into their Conv's output range."""
    m = classifier(seed=3)
    m.graph.initializer.extend([numpy_helper.from_array(np.float32(0), "lo"),
                                numpy_helper.from_array(np.float32(6), "hi")])
    for n in m.graph.node:
        if n.op_type == "Relu":
            n.op_type = "Clip"
            n.input.extend(["lo", "hi"])
    return m


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("islands")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(12)]
    pre = _clipped()
    qdq = int8.quantize_static_qdq(pre, _Reader(xs), "minmax", True, [], tmp / "ranges.json", tmp)
    assert {"relu1", "relu2"}.isdisjoint(n.name for n in qdq.graph.node)  # folded by the quantizer
    return pre, qdq, xs


def _run(m, xs):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.stack([sess.run(None, {"x": x})[0] for x in xs])


def _qdq_on(m, tensor):
    return [n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor]


def test_no_island_is_the_calibrated_graph_and_all_float_is_the_float_graph(graphs):
    pre, qdq, xs = graphs
    same = with_float_islands(pre, qdq, set())
    onnx.checker.check_model(same)
    assert np.array_equal(_run(same, xs), _run(qdq, xs))
    every = with_float_islands(pre, qdq, {n.name for n in pre.graph.node})
    assert not any(n.op_type.endswith("QuantizeLinear") for n in every.graph.node)
    assert np.array_equal(_run(every, xs), _run(pre, xs))


def test_an_island_has_float_weights_inside_and_one_qdq_pair_on_its_boundary(graphs):
    pre, qdq, xs = graphs
    m = with_float_islands(pre, qdq, {"conv1", "conv2"})
    onnx.checker.check_model(m)
    nodes = {n.name: n for n in m.graph.node}
    assert nodes["conv1"].input[1] == "w1" and nodes["conv2"].input[1] == "w2"  # the original float weights
    assert nodes["relu1"].op_type == "Clip" and nodes["relu2"].op_type == "Clip"  # the folded Clips run, in float
    assert not _qdq_on(m, "x") and not _qdq_on(m, "r1")  # graph input and the tensor inside the island: float
    assert len(_qdq_on(m, "r2")) == 1  # the boundary into the int8 GlobalAveragePool: one pair
    assert nodes["fc"].input[1] != "wf"  # outside the island: int8 weights
    # conv1 alone float: its input goes float (no other reader), its output keeps the calibrated Q/DQ
    alone = with_float_islands(pre, qdq, {"conv1"})
    assert not _qdq_on(alone, "x") and len(_qdq_on(alone, "r1")) == 1
    ref, got, q = _run(pre, xs), _run(m, xs), _run(qdq, xs)
    assert ((got - ref) ** 2).mean() < ((q - ref) ** 2).mean()  # less int8 error overall


def test_float_weights_and_neighbours_look_through_folded_activations(graphs):
    pre, qdq, _ = graphs
    present = {n.name for n in qdq.graph.node}
    near = neighbours(pre, present)
    assert near["conv1"] == ["conv2"] and near["conv2"] == ["conv1", "gap"]
    size = float_weights(pre, {"conv1", "gap"})
    assert size == {"conv1": 32 * 3 * 9 + 32, "gap": 0}


def _ranked(*names):
    return [NodeSensitivity(n, "Conv", 1.0 - i / 10) for i, n in enumerate(names)]


def test_search_prefers_the_cheaper_node_and_keeps_to_the_size_bound():
    gain = {"big": 0.05, "small": 0.04, "other": 0.03}

    def measure(nodes):
        return Score(None, 0.9 + sum(gain[n] for n in nodes))
    weights = {"big": 9000, "small": 100, "other": 900}
    goal = QuantTarget(min_cosine=0.93, candidates=3, max_float_nodes=3, max_float_weight_fraction=0.2)
    chosen, _ = search(_ranked("big", "small", "other"), measure, goal, "held", weights)
    assert chosen == ["small"]  # less gain than "big", far less size
    goal = QuantTarget(min_cosine=0.99, candidates=3, max_float_nodes=3, max_float_weight_fraction=0.2)
    with pytest.raises(QuantizationError, match="max_float_weight_fraction=0.2"):
        search(_ranked("big", "small", "other"), measure, goal, "held", weights)  # "big" is over 20% of the size


def test_search_grows_an_island_into_a_neighbour_with_no_gain_alone():
    def measure(nodes):  # b helps only next to a (the tensor between them goes float)
        s = set(nodes)
        return Score(None, 0.9 + 0.02 * ("a" in s) + 0.05 * ({"a", "b"} <= s))
    goal = QuantTarget(min_cosine=0.96, candidates=3, max_float_nodes=3)
    chosen, steps = search(_ranked("a", "b", "c"), measure, goal, "held", {}, {"a": ["b"], "b": ["a", "c"]})
    assert chosen == ["a", "b"] and [s.node for s in steps] == [None, "a", "b"]


def _pnet_head() -> onnx.ModelProto:
    """P-Net's first layer: an NHWC input Transposed, conv, PRelu, conv2. The Transpose only passes a quantized
    tensor along and the PRelu never quantizes (ORT's QDQ quantizer): with conv float, only conv2 needs int8."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.3, n)
             for n, s in [("w", (8, 3, 3, 3)), ("b", (8,)), ("slope", (8, 1, 1)), ("w2", (4, 8, 3, 3)), ("b2", (4,))]]
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w", "b"], ["c"], name="conv"),
             helper.make_node("PRelu", ["c", "slope"], ["p"], name="prelu"),
             helper.make_node("Conv", ["p", "w2", "b2"], ["y"], name="conv2")]
    g = helper.make_graph(nodes, "pnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12, 12, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_an_island_drops_qdq_where_requantizing_would_pass_through_and_prelu(tmp_path):
    pre = _pnet_head()
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, 12, 12, 3)).astype(np.float32) for _ in range(8)]

    def quantized_tensors(m):
        weights = {t.name for t in m.graph.initializer}
        return sorted(n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in weights)
    qdq = int8.quantize_static_qdq(pre, _Reader(xs), "minmax", True, [], tmp_path / "r.json", tmp_path)
    requant = int8.quantize_static_qdq(pre, None, "minmax", True, ["conv"], tmp_path / "r.json", tmp_path)
    cut = with_float_islands(pre, qdq, {"conv"})
    assert quantized_tensors(cut) == quantized_tensors(requant) == ["p", "y_QuantizeLinear_Input"]  # t, c float
    assert "t" in quantized_tensors(qdq) and "c" in quantized_tensors(qdq)
    assert np.allclose(_run(cut, xs), _run(requant, xs), atol=1e-5)  # the same graph, same scales


def test_search_passes_over_a_seed_beyond_the_size_bound_to_the_next():
    gain = {"big": 0.05, "small": 0.04}

    def measure(nodes):
        return Score(None, 0.9 + sum(gain[n] for n in nodes))
    goal = QuantTarget(min_cosine=0.93, candidates=2, max_float_nodes=2, max_float_weight_fraction=0.2)
    # "big" is the best seed per cost but alone over the bound (400 of 1500 weights > 20%): "small" is measured next
    chosen, _ = search(_ranked("big", "small"), measure, goal, "held", {"big": 400, "small": 250, "x": 850})
    assert chosen == ["small"]
