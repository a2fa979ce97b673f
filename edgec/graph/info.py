"""What `edgec check` and the manifest say about a model: opset, I/O with dynamic dims, op histogram, size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from edgec.artifact import ModelInfo
from edgec.graph.load import opset_of
from edgec.graph.shapes import dims_of, real_inputs
from edgec.graph.view import tensor_types
from edgec.hashing import sha256_path


def _io(value: onnx.ValueInfoProto) -> dict:
    elem = value.type.tensor_type.elem_type
    dtype = helper.tensor_dtype_to_np_dtype(elem).name if elem else "unknown"
    return {"name": value.name, "dtype": dtype, "shape": dims_of(value)}


def model_info(model: onnx.ModelProto, path: Path) -> ModelInfo:
    # weights stored as initializers or as Constant nodes (some exporters write every weight as a Constant)
    types = tensor_types(model)
    consts = [t.name for t in model.graph.initializer] + [
        n.output[0] for n in model.graph.node if n.op_type == "Constant" and n.output and n.output[0] in types]
    params = sum(int(np.prod(types[c][1])) for c in consts)
    return ModelInfo(
        path=path,
        sha256=sha256_path(path),
        opset=opset_of(model),
        ir_version=model.ir_version,
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        inputs=[_io(v) for v in real_inputs(model)],
        outputs=[_io(v) for v in model.graph.output],
        op_histogram=dict(sorted(Counter(n.op_type for n in model.graph.node).items(), key=lambda kv: (-kv[1], kv[0]))),
        bytes=path.stat().st_size,
        nodes=len(model.graph.node),
        parameters=params,
    )
