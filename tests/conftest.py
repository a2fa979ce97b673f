"""Shared fixtures: small hand-built ONNX models and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    # random-weight samples are generated once per machine; keep them in the user's cache unless told otherwise
    os.environ.setdefault("EDGEC_CACHE_DIR", str(Path.home() / ".cache" / "edgec"))
    # the CLI restores unchanged builds from the build cache; tests must exercise the real build path
    # (the cache's own tests switch it back on)
    os.environ.setdefault("EDGEC_NO_CACHE", "1")
    yield


@pytest.fixture
def cli():
    return CliRunner()


def conv_model(batch: int | str = 1, seed: int = 0) -> onnx.ModelProto:
    """Conv -> BatchNorm -> Relu -> GlobalAveragePool -> Flatten; random weights; `batch` may be symbolic."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b")
    scale = numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "bn_scale")
    bias = numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "bn_bias")
    mean = numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "bn_mean")
    var = numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "bn_var")
    nodes = [
        helper.make_node("Conv", ["images", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["logits"], name="flatten"),
    ]
    graph = helper.make_graph(
        nodes, "conv_model",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 8])],
        initializer=[w, b, scale, bias, mean, var],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgec-tests")
    model.ir_version = 8
    return model


@pytest.fixture
def conv_model_path(tmp_path) -> Path:
    path = tmp_path / "conv.onnx"
    onnx.save(conv_model(), str(path))
    return path


@pytest.fixture
def dynamic_model_path(tmp_path) -> Path:
    path = tmp_path / "dynamic.onnx"
    onnx.save(conv_model(batch="batch"), str(path))
    return path


def files_in(folder: Path) -> list[str]:
    """Everything in a folder, hidden files included (a staging dir left behind would show up)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []
