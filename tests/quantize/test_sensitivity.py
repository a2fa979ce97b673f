"""The keep-float search: ranking by the error a node adds, measuring the worst, greedy choice, time budget."""

import time

from edgec.quantize.sensitivity import NodeSensitivity, choose_float_nodes


def _ranked():
    return [NodeSensitivity("a", "Conv", 0.3), NodeSensitivity("b", "Conv", 0.2),
            NodeSensitivity("c", "Gemm", 0.1), NodeSensitivity("pool", "MaxPool", 0.0)]


GAIN = {"a": 0.004, "b": 0.001, "c": 0.006}


def _measure(calls):
    def measure(nodes):
        calls.append(tuple(nodes))
        return 0.985 + sum(GAIN[n] for n in nodes)
    return measure


def test_measures_the_worst_and_leaves_float_the_most_helpful_until_the_threshold():
    calls = []
    ranked = _ranked()
    chosen, cos, late = choose_float_nodes(ranked, _measure(calls), 0.985, 4, 4, 0.99)
    assert [s.cosine_if_float for s in ranked][:3] == [0.989, 0.986, 0.991] and ranked[3].cosine_if_float is None
    assert chosen == ["c"] and abs(cos - 0.991) < 1e-12 and not late  # c alone meets 0.99
    assert len(calls) == len(set(calls)) == 3  # no configuration measured twice
    chosen, cos, _ = choose_float_nodes(_ranked(), _measure([]), 0.985, 4, 4, 0.9999)
    assert chosen == ["c", "a", "b"]  # every helpful node, best first, when the threshold is out of reach
    chosen, _, _ = choose_float_nodes(_ranked(), _measure([]), 0.985, 4, 1, 0.9999)
    assert chosen == ["c"]  # max_float_nodes caps it


def test_deadline_stops_new_measurements():
    calls = []
    ranked = _ranked()
    chosen, cos, late = choose_float_nodes(ranked, _measure(calls), 0.985, 4, 4, 0.99, time.perf_counter() - 1)
    assert late and calls == [] and chosen == [] and cos == 0.985
    assert all(s.cosine_if_float is None for s in ranked)
