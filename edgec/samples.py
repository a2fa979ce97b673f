"""Sample models: the ONNX "light" zoo shipped inside the onnx wheel, with real random weights, and the sequence
samples of edgec.sequence_samples (`sample_path` serves both).

The light models build every weight with ConstantOfShape(0.02), so their outputs ignore the input and
a numeric check on them proves nothing. `randomized(name)` materialises each of those constants as a
seeded random initializer chosen by how it is used (He-normal conv/gemm weights by fan-in, small
biases, BatchNorm scale/var near 1) and drops the final Softmax so logits are compared.
BatchNorm running statistics are then calibrated on seeded structured synthetic images (what these nets are
fed; edgec.quantize.synthetic), as training would leave them, so activations stay in a trained net's range on
images (calibrated on N(0, 1) noise instead, densenet121 reached 400 on images and sent every one to one class).
Deterministic: the same name and seed give byte-identical files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import UsageError
from edgec.paths import cache_dir
from edgec.graph.view import uses as input_uses
from edgec.sequence_samples import SEQUENCE_SAMPLES

LIGHT_MODELS = {
    "squeezenet": "light_squeezenet.onnx",
    "shufflenet": "light_shufflenet.onnx",
    "inception_v1": "light_inception_v1.onnx",
    "inception_v2": "light_inception_v2.onnx",
    "densenet121": "light_densenet121.onnx",
    "resnet50": "light_resnet50.onnx",
    "alexnet": "light_bvlc_alexnet.onnx",
    "vgg19": "light_vgg19.onnx",
    "zfnet512": "light_zfnet512.onnx",
}
# vgg19/alexnet/zfnet512 unfold to hundreds of MB of weights
BIG_MODELS = ("alexnet", "vgg19", "zfnet512")


def sample_path(name: str, seed: int = 0) -> Path:
    """Path to a bundled sample (`edgec build --sample NAME`): a light-zoo CNN or a sequence model."""
    if name not in SEQUENCE_SAMPLES:
        return randomized(name, seed)
    out = cache_dir() / "samples" / f"{name}-s{seed}-v1.onnx"
    if not out.exists():
        _save(SEQUENCE_SAMPLES[name](seed), out)
    return out


def _save(model: onnx.ModelProto, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    onnx.save(model, str(tmp))
    os.replace(tmp, out)


def light_model_path(name: str) -> Path:
    """The original light model (all weights 0.02) inside the onnx wheel."""
    if name not in LIGHT_MODELS:
        raise UsageError(f"Unknown sample '{name}'. Samples: {', '.join([*LIGHT_MODELS, *SEQUENCE_SAMPLES])}.")
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / LIGHT_MODELS[name]


def randomized(name: str, seed: int = 0, keep_softmax: bool = False) -> Path:
    """Path to a random-weight copy of a light model, generated once into the cache."""
    # bump the version suffix whenever the generator changes, so stale cached copies are not reused
    out = cache_dir() / "samples" / f"{name}-random-s{seed}{'-softmax' if keep_softmax else ''}-v3.onnx"
    if out.exists():
        return out
    _save(randomize_weights(onnx.load(str(light_model_path(name))), seed=seed, keep_softmax=keep_softmax), out)
    return out


def _follow_unsqueeze(name: str, uses) -> list[tuple[onnx.NodeProto, int]]:
    """Uses of a tensor, looking through Unsqueeze (densenet applies BN as Unsqueeze+Mul/Add)."""
    out = []
    for node, i in uses.get(name, []):
        if node.op_type in ("Unsqueeze", "Reshape") and i == 0:
            out.extend(_follow_unsqueeze(node.output[0], uses))
        else:
            out.append((node, i))
    return out


def _random_value(shape: list[int], role: tuple[str, int] | None, rng: np.random.Generator) -> np.ndarray:
    op, idx = role if role else ("", -1)
    if op in ("Conv", "ConvTranspose", "Gemm", "MatMul") and idx == 1:
        fan_in = int(np.prod(shape[1:])) if op != "MatMul" else shape[0]
        if op == "Gemm":
            fan_in = shape[1]  # the light models use transB=1: weight is [out, in]
        return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), size=shape).astype(np.float32)
    if op == "BatchNormalization":
        if idx == 1:  # scale
            return rng.uniform(0.8, 1.2, size=shape).astype(np.float32)
        if idx == 4:  # variance
            return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
        return rng.normal(0.0, 0.1, size=shape).astype(np.float32)  # bias, mean
    if op == "Mul":
        return rng.uniform(0.8, 1.2, size=shape).astype(np.float32)
    return rng.normal(0.0, 0.05, size=shape).astype(np.float32)  # biases and anything else


def randomize_weights(model: onnx.ModelProto, seed: int = 0, keep_softmax: bool = False) -> onnx.ModelProto:
    graph = model.graph
    rng = np.random.default_rng(seed)
    inits = {t.name: t for t in graph.initializer}
    uses = input_uses(graph)
    new_nodes, new_inits = [], []
    removed_inputs: set[str] = set()
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input and node.input[0] in inits:
            shape = [int(d) for d in numpy_helper.to_array(inits[node.input[0]]).ravel()]
            roles = _follow_unsqueeze(node.output[0], uses)
            role = (roles[0][0].op_type, roles[0][1]) if roles else None
            if role and role[0] not in ("Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "Mul", "Add", "Sum"):
                new_nodes.append(node)  # a shape helper, not a weight: keep it exact
                continue
            value = _random_value(shape, role, rng)
            new_inits.append(numpy_helper.from_array(value, node.output[0]))
            removed_inputs.add(node.input[0])
        else:
            new_nodes.append(node)
    still_used = {i for n in new_nodes for i in n.input}
    keep_inits = [t for name, t in inits.items() if name not in removed_inputs or name in still_used]
    graph_inputs = [i for i in graph.input if i.name not in inits or i.name in {t.name for t in keep_inits}]
    # inputs that are initializers confuse runtimes that let callers override them: keep only real inputs
    graph_inputs = [i for i in graph_inputs if i.name not in {t.name for t in keep_inits}]
    outputs = list(graph.output)
    if not keep_softmax and new_nodes and new_nodes[-1].op_type == "Softmax":
        softmax = new_nodes.pop()
        out = next(o for o in outputs if o.name == softmax.output[0])
        renamed = helper.make_tensor_value_info(softmax.input[0], out.type.tensor_type.elem_type, None)
        renamed.type.CopyFrom(out.type)
        renamed.name = softmax.input[0]
        outputs = [renamed if o.name == softmax.output[0] else o for o in outputs]
    new_graph = helper.make_graph(
        new_nodes, graph.name, graph_inputs, outputs, initializer=keep_inits + new_inits
    )
    out_model = helper.make_model(new_graph, opset_imports=list(model.opset_import), producer_name="edgec-samples")
    out_model.ir_version = max(model.ir_version, 4)
    calibrate_batchnorm(out_model, seed=seed)
    onnx.checker.check_model(out_model)
    return out_model


def _calibration_inputs(shape: list[int], seed: int, samples: int) -> list[np.ndarray]:
    """Batch-1 inputs (some graphs hard-code batch 1) like the ones the net is meant for: structured synthetic
    images for image inputs, so the statistics match what calibration and evaluation feed it (random
    N(0,1) pixels leave deep nets' activations 10-100x off their image range); seeded N(0,1) otherwise."""
    from edgec.quantize.synthetic import synthetic_images

    if len(shape) == 4 and shape[1] in (1, 3):
        # indices far from the ones benches and tests calibrate or evaluate on
        return [synthetic_images(shape, 900_000 + 1000 * seed + k, 1) for k in range(samples)]
    rng = np.random.default_rng(seed + 1)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(samples)]


def calibrate_batchnorm(model: onnx.ModelProto, seed: int = 0, samples: int = 4) -> None:
    """Set each BatchNormalization's mean/var to the statistics of its input on seeded calibration inputs.

    BNs are calibrated in graph order, each from a run in which every earlier BN is already calibrated (so the
    statistics are exact). One ONNX Runtime session serves all runs: mean/var become overridable graph inputs."""
    import onnxruntime as ort

    bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    if not bns:
        return
    inits = {t.name: t for t in model.graph.initializer}
    value = model.graph.input[0]
    shape = [d.dim_value or 1 for d in value.type.tensor_type.shape.dim]
    xs = _calibration_inputs(shape, seed, samples)
    stat_names = [name for bn in bns for name in bn.input[3:5]]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.input.extend(
        helper.make_tensor_value_info(n, inits[n].data_type, list(inits[n].dims)) for n in stat_names
    )
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(bn.input[0]) for bn in bns)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep BNs unfused: stats are fed
    sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    stats = {n: numpy_helper.to_array(inits[n]) for n in stat_names}
    for k, bn in enumerate(bns):
        acts = [sess.run([bn.input[0]], {value.name: x, **stats})[0] for x in xs]
        act = np.concatenate(acts, axis=0).astype(np.float64)
        axes = tuple(i for i in range(act.ndim) if i != 1)
        stats[bn.input[3]] = act.mean(axis=axes).astype(np.float32)
        stats[bn.input[4]] = act.var(axis=axes).astype(np.float32)
    for name in stat_names:
        inits[name].CopyFrom(numpy_helper.from_array(stats[name], name))
