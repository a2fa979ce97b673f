"""ONNX QDQ -> TFLite int8: fold DequantizeLinear -> op -> QuantizeLinear into ops on int8 tensors.

Runs on the IR twice: `fold_qdq` before the layout pass (so the folded ops keep their ONNX names and layout
rules), `finish_qdq` after it (quant params for the Transposes the pass inserted; retag ops that need an
int8-specific lowering as "int8.<op>"). Tensors' quantization rides in `g.quant` (name -> builder.Quant), which
LowerCtx.output reads. What is not folded stays exact to ONNX Runtime's QDQ semantics: a QuantizeLinear is a
TFLite QUANTIZE, an activation DequantizeLinear a DEQUANTIZE (the op between runs in float), and a constant
DequantizeLinear (weights of a float op) is folded into a float constant here.
"""

from __future__ import annotations

import numpy as np

from edgec.lower.tflite.builder import Quant
from edgec.lower.tflite.ir import Graph, Node
from edgec.lower.tflite.registry import INT8, REGISTRY, LowerCtx


def _int8_rules() -> dict:
    """op -> its "int8.<op>" rule: the ops folded into int8 kernels (every rule module imported first)."""
    return {name[len(INT8):]: rule for name, rule in REGISTRY.load().items() if name.startswith(INT8)}


def __getattr__(name: str):
    """OWN_INT8 (ops with an int8-specific lowering: weights, pads with the zero point), PASS_INT8 (their float
    lowering takes int8 tensors), SAME_SCALE (output quant must equal input quant): all read off the registry."""
    rules = _int8_rules()
    if name == "OWN_INT8":
        return {op for op, r in rules.items() if not r.flags.get("float_kernel")}
    if name == "PASS_INT8":
        return {op for op, r in rules.items() if r.flags.get("float_kernel")}
    if name == "SAME_SCALE":
        return {op for op, r in rules.items() if r.flags.get("same_scale")}
    raise AttributeError(name)


_WEIGHTS = {"Conv": (1, 2), "Gemm": (1, 2), "MatMul": (1,)}  # op -> constant inputs (weights, bias) taken as quantized constants


def _q_params(g: Graph, node: Node) -> tuple[np.ndarray, np.ndarray, int | None] | None:
    """(scale, zero_point, axis) of a Q/DQ node when both are constants, else None."""
    scale = g.consts.get(node.inputs[1])
    zp = g.consts.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if scale is None or (len(node.inputs) > 2 and node.inputs[2] and zp is None):
        return None
    if zp is None:
        zp = np.zeros_like(scale, dtype=np.uint8)
    axis = node.attrs.get("axis", 1) if scale.size > 1 else None
    return scale.astype(np.float32).reshape(-1), zp.reshape(-1), axis


def _per_tensor(params) -> Quant | None:
    """int8 Quant of an activation tensor; uint8 shifts to int8 (zero point - 128, same scale); int16 when
    symmetric (TFLite's 16x8 kernels take int16 activations with zero point 0 only)."""
    scale, zp, axis = params
    if scale.size != 1:
        return None
    if zp.dtype == np.int16:
        return Quant([float(scale[0])], [0]) if int(zp[0]) == 0 else None
    shift = 128 if zp.dtype == np.uint8 else 0
    if zp.dtype not in (np.int8, np.uint8):
        return None
    return Quant([float(scale[0])], [int(zp[0]) - shift])


def _dequantize(q: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int | None) -> np.ndarray:
    shape = [1] * q.ndim
    if axis is not None and q.ndim:
        shape[axis % q.ndim] = -1
    return ((q.astype(np.float32) - zp.astype(np.float32).reshape(shape)) * scale.reshape(shape)).astype(np.float32)


def fold_qdq(g: Graph) -> dict:
    """Fold QDQ groups into int8 ops (in place). Returns counts for the build notes."""
    if not any(n.op in ("QuantizeLinear", "DequantizeLinear") for n in g.nodes):
        return {}
    problems: list[tuple[str, str, str]] = []
    # 0. QuantizeLinear of a constant (exporters that quantize float weights in the graph): fold it here
    for n in list(g.nodes):
        if n.op == "QuantizeLinear" and n.inputs[0] in g.consts and (params := _q_params(g, n)) is not None:
            scale, zp, axis = params
            x = g.consts[n.inputs[0]].astype(np.float32)
            shape = [1] * x.ndim
            if axis is not None and x.ndim:
                shape[axis % x.ndim] = -1
            info = np.iinfo(zp.dtype)
            q = np.clip(np.rint(x / scale.reshape(shape)) + zp.astype(np.float32).reshape(shape), info.min, info.max)
            out = n.outputs[0]
            g.consts[out] = q.astype(zp.dtype)
            g.shapes[out], g.dtypes[out] = q.shape, zp.dtype
            g.nodes.remove(n)
    # 1. constant DequantizeLinear: a quantized constant (kept for int8 kernels) and its float value
    keep = []
    for n in g.nodes:
        if n.op == "DequantizeLinear" and n.inputs[0] in g.consts:
            params = _q_params(g, n)
            q = g.consts[n.inputs[0]]
            if q.dtype.kind not in "iu" or q.dtype.itemsize > 4 or g.dtypes.get(n.outputs[0], np.float32) != np.float32:
                problems.append((n.op, n.name, f"constant of dtype {q.dtype} to {g.dtypes.get(n.outputs[0])}: only "
                                               f"8/16/32-bit integer constants to float32"))
                continue
            if params is None:
                problems.append((n.op, n.name, "scale/zero point are not constants"))
                keep.append(n)
                continue
            q = g.consts[n.inputs[0]]
            out = n.outputs[0]
            g.consts[out] = _dequantize(q, *params)
            g.shapes[out], g.dtypes[out] = q.shape, np.dtype(np.float32)
            g.qconst[out] = (q, *params)
            continue
        keep.append(n)
    g.nodes = keep
    # 2. activation Q outputs are int8 tensors with per-tensor params
    for n in g.nodes:
        if n.op in ("QuantizeLinear", "DequantizeLinear"):
            params = _q_params(g, n)
            quant = _per_tensor(params) if params else None
            tensor = n.outputs[0] if n.op == "QuantizeLinear" else n.inputs[0]
            # per-axis / blocked / runtime params, other dtypes, uint8 model I/O: not an int8 tensor; the node
            # is lowered in float arithmetic (ops/quant_math.py) or refused there with its reason
            if quant is None or params[1].dtype == np.uint8 and (tensor in g.inputs or tensor in g.outputs):
                continue
            g.quant[tensor] = quant
            # uint8 QDQ tensors become int8 (zero point - 128); int16 ones stay int16
            g.dtypes[tensor] = np.dtype(np.int16 if params[1].dtype == np.int16 else np.int8)
    # 3. DQ -> op -> Q groups
    # one pass: a fold only rewires its own node and drops its own Q, so the maps stay valid for the others
    folded = 0
    prod, cons = g.producers(), g.consumers()
    rules = _int8_rules()
    for n in list(g.nodes):
        if n.op in rules and n.name not in g.int8_nodes and _fold(g, n, prod, cons, rules[n.op]):
            folded += 1
    requantized = _requantize_pairs(g)
    _drop_dead(g)
    shared = _share_scales(g, rules)
    # the layout pass renames the outputs of the ops it wraps (and cancels the Transposes between them):
    # remember each int8 output by (node, index) and re-attach it afterwards
    g.node_quant = {(n.name, j): (g.quant[o], g.dtypes[o]) for n in g.nodes for j, o in enumerate(n.outputs)
                    if o in g.quant}
    g.node_qconst = {(n.name, i): g.qconst[c][1:] for n in g.nodes for i, c in enumerate(n.inputs) if c in g.qconst}
    return {"int8_ops": folded, "shared_scales": shared + requantized, "problems": problems}


_OPERANDS = {"Reshape", "Squeeze", "Unsqueeze", "ReduceMean", "Resize", "Split", "Slice"}  # constant inputs > 0: shapes, axes


def _fold(g: Graph, n: Node, prod: dict, cons: dict, rule) -> bool:
    weights = _WEIGHTS.get(n.op, ())
    qs = []  # the one QuantizeLinear reading each output (Split has several outputs)
    for y in n.outputs:
        users = cons.get(y, []) if y else []
        if y in g.outputs or len(users) != 1 or users[0].op != "QuantizeLinear" or users[0].outputs[0] not in g.quant:
            return False
        qs.append(users[0])
    if not qs:
        return False
    new_inputs = list(n.inputs)
    for i, name in enumerate(n.inputs):
        if not name:
            continue
        if i in weights:
            if name not in g.qconst:
                return False
            continue
        if name in g.consts:
            if n.op in _OPERANDS and i > 0:
                continue  # shape/axes operands
            return False
        dq = prod.get(name)
        if dq is None or dq.op != "DequantizeLinear" or dq.inputs[0] not in g.quant:
            return False
        new_inputs[i] = dq.inputs[0]
    widths = {g.dtypes[x] for x in [*(new_inputs[i] for i, x in enumerate(n.inputs) if x and i not in weights
                                       and x not in g.consts), *(q.outputs[0] for q in qs)]}
    if len(widths) != 1 or widths == {np.dtype(np.int16)} and not rule.flags.get("int16"):
        return False  # mixed int8/int16, or int16 where LiteRT has no 16x8 kernel: the op runs float
    if rule.check is not None and rule.check(LowerCtx(g, None, {}, n)):
        return False  # the int8 kernel covers only part of the ONNX op: this one stays float
    qin = g.quant[new_inputs[0]]
    if rule.flags.get("same_scale") and any(g.quant[q.outputs[0]] != qin for q in qs):
        return False
    n.inputs = new_inputs
    n.outputs = [q.outputs[0] for q in qs]
    for q in qs:
        g.nodes.remove(q)
    g.int8_nodes.add(n.name)
    return True


def _requantize_pairs(g: Graph) -> int:
    """DequantizeLinear -> QuantizeLinear with nothing between (an op between them folded or removed): the Q
    reads the int8 tensor itself: the same tensor when the params are equal, else one QUANTIZE int8 -> int8."""
    prod = g.producers()
    done = 0
    for q in list(g.nodes):
        dq = prod.get(q.inputs[0]) if q.op == "QuantizeLinear" else None
        if dq is None or dq.op != "DequantizeLinear" or dq.inputs[0] not in g.quant or q.outputs[0] not in g.quant:
            continue
        x, y = dq.inputs[0], q.outputs[0]
        if g.quant[x] == g.quant[y] and y not in g.outputs:
            for n in g.nodes:
                n.inputs = [x if i == y else i for i in n.inputs]
            g.nodes.remove(q)
        else:
            q.inputs = [x, *q.inputs[1:]]
        done += 1
    return done


_FIXED_TOLERANCE = 0.01  # a QDQ scale within 1% of a kernel's fixed one: the grids differ by < 1% of a step


def _share_scales(g: Graph, rules: dict) -> int:
    """Give int8 tensors the params their consumer needs, where the QDQ model requantizes in between and every
    reader takes any params: the producer then writes those params directly (one rounding instead of two; no
    QUANTIZE int8 -> int8 in the file).
    - an int8 Concat input made for that Concat (through same-scale ops: Split, Resize, Reshape, MaxPool...):
      the Concat's output params (TFLite's CONCATENATION would requantize it first);
    - the output of a fixed-params kernel (LOGISTIC, SOFTMAX: 1/256, -128) whose QDQ params are within 1% of
      those: the fixed params (the QDQ model's would cost a requantize)."""
    prod, cons = g.producers(), g.consumers()

    def flag(n: Node, name: str):
        rule = rules.get(n.op)
        return rule.flags.get(name) if rule is not None and n.name in g.int8_nodes else None

    def group(t: str) -> set[str] | None:
        """The int8 tensors tied to `t` by same-scale ops, or None when they cannot all take new params: graph
        I/O, a reader that needs these params (a Concat, a same-scale op outside), a producer that cannot write
        any params (only an int8 kernel with its own output params, or a float island's QuantizeLinear)."""
        seen, todo = set(), [t]
        while todo:
            x = todo.pop()
            if x in seen:
                continue
            if x not in g.quant or x in g.inputs or x in g.outputs:
                return None
            seen.add(x)
            p = prod.get(x)
            if p is not None and flag(p, "same_scale"):
                todo += [p.inputs[0], *p.outputs]
            elif p is None or not (p.op == "QuantizeLinear" or p.name in g.int8_nodes and not flag(p, "fixed_output")
                                   and not flag(p, "float_kernel")):
                return None
            for c in cons.get(x, []):
                if flag(c, "same_scale"):
                    todo += c.outputs
        return seen

    def readers_take_any(tensors: set[str], allowed: Node | None) -> bool:
        for x in tensors:
            for c in cons.get(x, []):
                if c is allowed or c.op == "DequantizeLinear" or flag(c, "same_scale"):
                    continue
                if c.name not in g.int8_nodes or c.op == "Concat":
                    return False
        return True

    shared = 0
    for n in g.nodes:
        fixed = flag(n, "fixed_output")
        y = n.outputs[0]
        if fixed and y in g.quant and y not in g.outputs:
            q = g.quant[y]
            if (q.zero_point == [fixed[1]] and q.scale[0] != fixed[0]
                    and abs(q.scale[0] / fixed[0] - 1) <= _FIXED_TOLERANCE and readers_take_any({y}, None)):
                g.quant[y] = Quant([float(fixed[0])], [fixed[1]])
                shared += 1
    # consumers first: a Concat fed by a Concat (DenseNet) hands its params up the chain
    for n in reversed(g.nodes):
        if n.op == "Concat" and n.name in g.int8_nodes:
            y = n.outputs[0]
            for x in n.inputs:
                if x not in g.quant or g.quant[x] == g.quant[y]:
                    continue
                tied = group(x)
                if tied and y not in tied and readers_take_any(tied, n):
                    for t in tied:
                        g.quant[t] = g.quant[y]
                    shared += 1
    return shared


def _drop_dead(g: Graph) -> None:
    """Remove DequantizeLinear nodes nobody reads any more (their int8 input is read directly)."""
    while True:
        cons = g.consumers()
        dead = [n for n in g.nodes if n.op == "DequantizeLinear" and not cons.get(n.outputs[0])
                and n.outputs[0] not in g.outputs]
        if not dead:
            return
        for n in dead:
            g.nodes.remove(n)


def _requantize(w: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int | None) -> np.ndarray:
    """The integers back from a dequantized constant whose elements were only moved (exact: w = (q - zp) * s)."""
    shape = [1] * w.ndim
    if axis is not None and w.ndim:
        shape[axis % w.ndim] = -1
    q = np.round(w / scale.reshape(shape)) + zp.astype(np.float32).reshape(shape)
    return q.astype(zp.dtype)


def finish_qdq(g: Graph) -> None:
    """After the layout pass: Transpose/Reshape outputs of int8 tensors carry the same quant; ops with an
    int8-specific lowering are retagged "int8.<op>"."""
    quant = g.quant
    if not quant:
        return
    for n in g.nodes:
        for i, c in enumerate(n.inputs):  # weights the pass rewrote (e.g. a flatten folded into Gemm's rows)
            params = g.node_qconst.get((n.name, i))
            if params is not None and c not in g.qconst and c in g.consts:
                g.qconst[c] = (_requantize(g.consts[c], *params), *params)
        for j, o in enumerate(n.outputs):
            q = g.node_quant.get((n.name, j))
            if q is not None and o not in quant:
                quant[o], g.dtypes[o] = q
    changed = True
    while changed:  # both ways: the pass also renames an agnostic op's output and transposes it back
        changed = False
        for n in g.nodes:
            if n.op not in ("Transpose", "Reshape"):
                continue
            a, b = n.inputs[0], n.outputs[0]
            for src, dst in ((a, b), (b, a)):
                if src in quant and dst not in quant and dst not in g.consts:
                    quant[dst], g.dtypes[dst] = quant[src], g.dtypes[src]
                    changed = True
    rules = _int8_rules()
    for n in g.nodes:
        if n.name in g.int8_nodes and n.op in rules and not rules[n.op].flags.get("float_kernel"):
            n.op = f"{INT8}{n.op}"


def quant_ops(b) -> dict[str, int]:
    """The (de)quantizing ops of a lowered model by what they do: float -> int8 at a model input or a float
    island's end ("quantize"), int8 -> int8 between scales ("requantize"), int8 -> float of an activation into
    a float island or a model output ("dequantize"), of a constant weight of a float op ("dequantize_weights")."""
    out = {"quantize": 0, "requantize": 0, "dequantize": 0, "dequantize_weights": 0}
    for op in b.ops:
        if op.code not in ("QUANTIZE", "DEQUANTIZE"):
            continue
        x = b.tensors[op.inputs[0]]
        if op.code == "DEQUANTIZE":
            out["dequantize_weights" if x.buffer else "dequantize"] += 1
        else:
            out["requantize" if x.dtype in (np.int8, np.uint8, np.int16) else "quantize"] += 1
    return out


def int8_note(stats: dict, histogram: dict, ops: dict | None = None) -> str:
    """The build note: how much of the QDQ model runs on int8 kernels, and where it crosses to float."""
    if not stats:
        return "int8 asked but the model has no QuantizeLinear/DequantizeLinear: it runs in float"
    ops = ops or {}
    return (f"int8 from the QDQ model: {stats['int8_ops']} ops folded into int8 kernels (per-channel int8 weights, "
            f"int32 bias), {stats.get('shared_scales', 0)} requantizes saved by sharing params; "
            f"{histogram.get('TRANSPOSE', 0)} TRANSPOSE; {histogram.get('QUANTIZE', 0)} QUANTIZE ({ops.get('quantize', 0)} "
            f"float -> int8 at model inputs and float-island ends, {ops.get('requantize', 0)} int8 -> int8 between "
            f"different params); {histogram.get('DEQUANTIZE', 0)} DEQUANTIZE ({ops.get('dequantize', 0)} into float "
            f"islands / float outputs, {ops.get('dequantize_weights', 0)} int8 weights of float ops)")


def weight_codec(g: Graph):
    """For the builder: a float constant that is exactly a dequantized int8 weight of this QDQ model (possibly
    permuted by a lowering, e.g. OIHW -> OHWI) -> (int8 array, Quant) so it is stored as int8 + DEQUANTIZE,
    the same numbers ONNX Runtime computes with (weight-only int8; float islands of an int8 model).
    The channel axis is found by value: dividing by the scales must give exact integers on exactly one axis."""
    grids = {}
    for q, scale, zp, axis in g.qconst.values():
        if q.dtype == np.int8 and not np.any(zp) and q.size >= 16:
            grids.setdefault(scale.size, []).append(scale)
    if not grids:
        return None

    def encode(array: np.ndarray):
        if array.dtype != np.float32 or array.size < 16:
            return None
        for axis, n in enumerate(array.shape):
            for scale in grids.get(n, []) + (grids.get(1, []) if axis == 0 else []):
                shape = [1] * array.ndim
                shape[axis] = scale.size
                s = scale.reshape(shape) if scale.size > 1 else scale.reshape(())
                q = np.round(array / s)
                if np.abs(q).max() <= 127 and np.array_equal((q * s).astype(np.float32), array):
                    quant = Quant([float(x) for x in scale], [0] * scale.size, axis if scale.size > 1 else None)
                    return q.astype(np.int8), quant
        return None

    return encode


def int8_io(g: Graph, signature: dict[str, str]) -> list[tuple[str, str, str]]:
    """Quantized model I/O (profile tflite.io_dtype: int8): a graph input read only by QuantizeLinear nodes of one
    scale becomes that int8 tensor, a graph output made by DequantizeLinear its int8 input; the signature keeps
    the ONNX names. Returns problems for the I/O that cannot be int8 (no such Q/DQ at the boundary)."""
    problems = []
    quant = g.quant
    cons, prod = g.consumers(), g.producers()
    for i, name in enumerate(list(g.inputs)):
        users = cons.get(name, [])
        qs = {quant.get(u.outputs[0]) and (tuple(quant[u.outputs[0]].scale), tuple(quant[u.outputs[0]].zero_point))
              for u in users if u.op == "QuantizeLinear"}
        if not users or any(u.op != "QuantizeLinear" for u in users) or len(qs) != 1 or None in qs:
            problems.append(("Input", name, "int8 model input needs the input read only by QuantizeLinear of one scale"))
            continue
        if g.dtypes[users[0].outputs[0]] != np.int8:
            problems.append(("Input", name, "int8 model input: the model's activations are int16 (quantize.activations"
                                            "); leave tflite.io_dtype float"))
            continue
        first = users[0].outputs[0]
        for u in users:
            for c in cons.get(u.outputs[0], []):
                c.inputs = [first if x == u.outputs[0] else x for x in c.inputs]
            g.nodes.remove(u)
        for key, value in signature.items():
            if value == name:
                signature[key] = first
        g.inputs[i] = first
    for i, name in enumerate(list(g.outputs)):
        dq = prod.get(name)
        if dq is None or dq.op != "DequantizeLinear" or dq.inputs[0] not in quant or len(cons.get(name, [])):
            problems.append(("Output", name, "int8 model output needs a DequantizeLinear producing it"))
            continue
        if g.dtypes[dq.inputs[0]] != np.int8:
            problems.append(("Output", name, "int8 model output: the model's activations are int16 "
                                             "(quantize.activations); leave tflite.io_dtype float"))
            continue
        g.nodes.remove(dq)
        for key, value in signature.items():
            if value == name:
                signature[key] = dq.inputs[0]
        g.outputs[i] = dq.inputs[0]
    return problems


def io_quant(data: bytes) -> dict[str, dict]:
    """{signature name: {"dtype", "scale", "zero_point"}} of the int8 model inputs/outputs of a .tflite file: what
    an app needs to quantize its input and read the output (real = scale * (q - zero_point))."""
    from ai_edge_litert import schema_py_generated as S

    m = S.ModelT.InitFromPackedBuf(data, 0)
    sg, sig = m.subgraphs[0], m.signatureDefs[0]
    out = {}
    for t in list(sig.inputs) + list(sig.outputs):
        tensor = sg.tensors[t.tensorIndex]
        if tensor.type == S.TensorType.INT8 and tensor.quantization is not None:
            name = t.name.decode() if isinstance(t.name, bytes) else t.name
            out[name] = {"dtype": "int8", "scale": float(tensor.quantization.scale[0]),
                         "zero_point": int(tensor.quantization.zeroPoint[0])}
    return out
