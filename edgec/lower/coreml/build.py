"""Build a MIL Program from an ONNX graph: placeholders with our own names, one registry call per node.

The Function is built directly (not @mb.program) so inputs keep their (sanitised) ONNX names.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

import numpy as np
import onnx
from onnx import helper

from edgec.graph.dynamic import model_ranges
from edgec.lower.coreml.names import NameTable
from edgec.lower.coreml.registry import MIL_DTYPE, READ_ONLY_DTYPE, REGISTRY, Env, GraphView, NodeView, lower_nodes, to_mil_array
from edgec.runtimes.metadata import NameMap  # the runner reads it back

_DOMAINS = ("", "ai.onnx", "edgec")  # edgec: the graph passes' own nodes (graph.generalize's CutToLength)


def real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def _np_dtype(elem_type: int) -> str:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name


def find_problems(model: onnx.ModelProto, graph: GraphView | None = None) -> list[tuple[str, str, str]]:
    """(op_type, node_name, why) for every node (and graph input) the CoreML lowering cannot take."""
    graph = graph or GraphView(model)
    problems = []
    for v in real_inputs(model):
        elem, shape = graph.types.get(v.name, (0, None))
        if elem not in MIL_DTYPE and elem not in READ_ONLY_DTYPE:
            problems.append(("graph input", v.name, f"dtype {onnx.TensorProto.DataType.Name(elem)} has no CoreML type"))
        elif shape is None:
            problems.append(("graph input", v.name, "dynamic shape (fix it with the profile's inputs or --input-shape)"))
    for i, node in enumerate(model.graph.node):
        n = NodeView(node, i, graph)
        rule = REGISTRY.get(node.op_type) if node.domain in _DOMAINS else None
        if rule is None:
            where = f"domain '{node.domain}' " if node.domain not in _DOMAINS else ""
            problems.append((node.op_type, n.name, f"no CoreML lowering for this {where}op"))
            continue
        bad_out = [o for o in n.outputs if o and graph.types.get(o, (1, None))[0] not in MIL_DTYPE]
        try:
            why = rule.check(n) if rule.check else None
        except Exception as e:  # a malformed attribute is the user's model, not our crash
            why = f"attributes cannot be read ({type(e).__name__}: {e})"
        if not why:
            why = _empty_tensor(n, graph)
        if not why and bad_out:
            elem = graph.types[bad_out[0]][0]
            why = f"output '{bad_out[0]}' is {onnx.TensorProto.DataType.Name(elem)}, which CoreML cannot hold"
        if why:
            problems.append((node.op_type, n.name, why))
    return problems


_MAX_RANK = 5  # CoreML refuses any tensor of higher rank


def _empty_tensor(n: NodeView, graph: GraphView) -> str | None:
    """A computed tensor with a 0-length axis (constants such as an empty Resize roi are fine), or of rank > 5."""
    for name in [i for i in n.inputs if i and i not in graph.consts] + [o for o in n.outputs if o]:
        shape = graph.types.get(name, (0, None))[1]
        if shape is not None and 0 in shape:
            return f"tensor '{name}' is empty (shape {list(shape)}): CoreML has no zero-size tensors"
        if shape is not None and len(shape) > _MAX_RANK:
            return f"tensor '{name}' has rank {len(shape)}: CoreML supports rank <= {_MAX_RANK}"
    return None


def _flexible(shape, axes: dict, symbols: dict) -> tuple:
    """The placeholder shape: a ranged axis (graph.dynamic) is a MIL symbol, shared by the axes of one dim name."""
    from coremltools.converters.mil.mil import get_new_symbol

    out = list(shape)
    for axis, (_, _, dim) in axes.items():
        if dim not in symbols:
            symbols[dim] = get_new_symbol()
        out[axis] = symbols[dim]
    return tuple(out)


@contextlib.contextmanager
def fresh_builder_names():
    """coremltools numbers unnamed ops with a process-wide counter; give each build its own so two
    builds in one process name (and serialise) everything identically."""
    from coremltools.converters.mil.mil import Builder as mb

    saved = mb.name_count
    mb.name_count = defaultdict(int)
    try:
        yield
    finally:
        mb.name_count = saved


def build_program(model: onnx.ModelProto, opset_version, graph: GraphView | None = None,
                  post_scales: dict[str, list[float]] | None = None, vector_outputs: set[str] = frozenset(),
                  symbolic: bool = True):
    """MIL Program + NameMap. Call inside fresh_builder_names(); find_problems() must be empty.
    post_scales: ONNX input -> per-channel factors the input is multiplied by first (image inputs whose
    normalisation CoreML's ImageType cannot express alone). vector_outputs: ONNX outputs reshaped to
    [1, size] (a classifier's scores, e.g. [1, 1000, 1, 1]; CoreML's classify wants one vector)."""
    from coremltools.converters.mil.mil import Builder as mb
    from coremltools.converters.mil.mil import Function, Program, types

    graph = graph or GraphView(model)
    names = NameTable()
    name_map = NameMap()
    placeholders = {}
    # ranged axes (graph.dynamic): a MIL symbol per model dim name (lower.coreml.flexible builds it)
    ranges, symbols = model_ranges(model) if symbolic else {}, {}
    mil_types = {"fp32": types.fp32, "fp16": types.fp16, "int32": types.int32, "bool": types.bool}
    for v in real_inputs(model):
        elem, shape = graph.types[v.name]
        mil = names.feature(v.name)
        name_map.inputs[v.name] = mil
        name_map.input_dtypes[v.name] = _np_dtype(elem)
        # a scalar input is fed as shape (1,) and squeezed inside: CoreML features and the milproto loader
        # (which our interpreter uses) do not take rank-0 function inputs
        placeholders[mil] = mb.placeholder(shape=_flexible(shape, ranges.get(v.name, {}), symbols) or (1,),
                                           dtype=mil_types[MIL_DTYPE.get(elem) or READ_ONLY_DTYPE[elem]])
    for o in model.graph.output:
        name_map.outputs[o.name] = names.feature(o.name)
        name_map.output_dtypes[o.name] = _np_dtype(graph.types[o.name][0])

    with Function(placeholders, opset_version=opset_version) as fn:
        env = Env(graph, names)
        env.opset = opset_version
        for onnx_name, mil in name_map.inputs.items():
            env.values[onnx_name] = fn.inputs[mil]
            if not graph.types[onnx_name][1]:
                env.values[onnx_name] = mb.squeeze(x=fn.inputs[mil], name=names.fresh(f"{mil}_scalar"))
            if post_scales and onnx_name in post_scales:
                factors = np.asarray(post_scales[onnx_name], np.float32).reshape(1, -1, 1, 1)
                env.values[onnx_name] = mb.mul(x=fn.inputs[mil], y=factors, name=names.fresh(f"{mil}_std"))
        lower_nodes(model, graph, env)
        outs = []
        for o in model.graph.output:
            want = name_map.outputs[o.name]
            value = env.values.get(o.name, graph.consts.get(o.name))
            if isinstance(value, np.ndarray):
                if value.ndim == 0:
                    name_map.scalars.append(o.name)
                value = mb.const(val=to_mil_array(value), name=names.fresh(f"{want}_const"))
            if o.name in vector_outputs:
                size = int(np.prod(graph.types[o.name][1]))
                value = mb.reshape(x=value, shape=[1, size], name=want)
            elif value.name != want or any(value is v for v in outs) or value in fn.inputs.values():
                value = mb.identity(x=value, name=want)  # aliases and repeats still get their own output name
            outs.append(value)
        fn.set_outputs(outs)
    name_map.tensors = dict(names.onnx_to_mil)
    program = Program()
    program.add_function("main", fn)
    return program, name_map
