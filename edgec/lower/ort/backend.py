"""ONNX Runtime Mobile backend: the (simplified, quantized) ONNX graph saved in ORT format."""

from __future__ import annotations

import onnx
import onnxruntime as ort

from edgec.artifact import Artifact, LowerContext
from edgec.graph.passes import only_16_bit_activations, without_activation_qdq
from edgec.lower.ort.convert import ort_refusal, to_ort_format, write_reduced_op_config
from edgec.lower.ort.coverage import coverage_lines, ep_coverage
from edgec.runtimes.host_ort import OrtRunner


_NODE_EPS = ("nnapi", "coreml")  # ORT execution providers that take whole ONNX nodes from the saved graph


def optimization_level(ctx: LowerContext) -> tuple[str, str]:
    """(level, note): the target's level, raised to 'all' (NCHWc left out, as ORT's own converter does) for an
    int8 graph on the CPU provider. 'all' adds the provider's NHWC layout transforms: QLinearConv / MaxPool as
    com.microsoft NHWC kernels, MLAS's int8 layout on ARM and x86 (squeezenet on this host: 8.5 -> 2.6 ms).
    Not for float graphs: there 'all' folds fp16 weights back to fp32 (an fp16 file grew to the fp32 size). Not
    when the profile delegates to NNAPI or CoreML: those providers cannot take the NHWC kernels."""
    level = ctx.target.ort_optimization_level
    delegate = (ctx.profile.runtime.delegate or "").lower()
    if ctx.precision != "int8" or level != "extended" or ctx.target.ort_optimization_style != "fixed":
        return level, ""
    if delegate in _NODE_EPS:
        return level, (f" (int8 stays at this level: the CPU-only NHWC kernels of level 'all' would keep nodes from "
                       f"profile '{ctx.profile.name}''s {delegate} delegate)")
    return "all", " (int8: level 'all' without NCHWc, for the CPU provider's NHWC int8 kernels)"


# ONNX opset each ONNX Runtime release implements (onnxruntime.ai/docs/reference/compatibility.html)
ORT_OPSET = {"1.14": 18, "1.15": 19, "1.16": 19, "1.17": 20, "1.18": 21, "1.19": 21, "1.20": 21, "1.21": 22}


def ort_opset(version: str | None) -> int:
    """The opset of an ORT release ("1.20" or "1.20.1"); the installed onnx's when unknown or not given."""
    minor = ".".join(str(version or "").split(".")[:2])
    if minor in ORT_OPSET:
        return ORT_OPSET[minor]
    return onnx.defs.onnx_opset_version()


class OrtBackend:
    format = "ort"
    takes_sequences = True  # ORT runs sequence and optional graph inputs/outputs as they are

    def unsupported(self, model: onnx.ModelProto) -> list[tuple[str, str, str]]:
        """Nodes whose op has no kernel in ONNX Runtime's CPU EP (what a full ORT Mobile build has)."""
        schemas = {}
        out = []
        for node in model.graph.node:
            domain = node.domain or ""
            if domain not in ("", "ai.onnx", "com.microsoft", "ai.onnx.ml"):
                out.append((node.op_type, node.name, f"custom domain '{domain}' has no kernel in ORT Mobile"))
                continue
            key = (domain, node.op_type)
            if key not in schemas:
                try:
                    onnx.defs.get_schema(node.op_type, domain=domain if domain != "ai.onnx" else "")
                    schemas[key] = True
                except onnx.defs.SchemaError:
                    schemas[key] = domain == "com.microsoft"  # contrib ops: ORT checks them at load
            if not schemas[key]:
                out.append((node.op_type, node.name, "not an ONNX operator"))
        return out

    def as_built(self, model: onnx.ModelProto, artifact: Artifact) -> tuple[onnx.ModelProto, str | None]:
        """(graph, None) for the latency estimate: ONNX Runtime has no 16-bit kernels, so a 16-bit QDQ group runs
        as float arithmetic (its Q/DQ as real ops on top: the float graph is the best case)."""
        return (without_activation_qdq(model)[0] if only_16_bit_activations(model) else model), None

    def lower(self, model: onnx.ModelProto, ctx: LowerContext) -> Artifact:
        target = ctx.target
        path = ctx.staging_dir / f"{ctx.model_name}{target.extension}"
        u8_note = []
        if ctx.precision == "int8":  # same scales, uint8 activations: ORT's fast x86 int8 path (edgec.quantize.int8)
            from edgec.quantize.int8 import uint8_activations

            model, converted = uint8_activations(model)
            u8_note = [f"int8: {converted} activation Q/DQ pair(s) as uint8 (zero point + 128, same scales and "
                       "values as the other targets): ONNX Runtime's U8S8 kernels"]
        level, level_note = optimization_level(ctx)
        to_ort_format(model, path, level, target.ort_optimization_style, target.name)
        config = ctx.staging_dir / f"{ctx.model_name}.required_operators.config"
        type_reduced = write_reduced_op_config(path, config, path.name)
        coverage = ep_coverage(model)
        notes = [
            f"ORT format, optimization level '{level}' ({target.ort_optimization_style} optimizations), "
            f"onnxruntime {ort.__version__}" + level_note,
            f"reduced-operator config for a minimal ORT build: {config.name}"
            + ("" if type_reduced else " (without type reduction: ORT's tooling cannot reduce this model's types)"),
            *coverage_lines(coverage),
            *u8_note,
        ]
        return Artifact(
            target=target.name,
            profile=ctx.profile.name,
            format=self.format,
            path=path,
            precision=ctx.precision,
            extra_files=[config],
            notes=notes,
            details={"ep_coverage": coverage, "optimization_level": level,
                     "onnxruntime": ort.__version__},
        )

    def refusal_at_run(self, model: onnx.ModelProto, feeds: dict, text: str) -> tuple[str, str, str] | None:
        """The artifact failed to run with `text`: ORT's own refusal when ONNX Runtime fails on the original
        model too (no optimizations, not ORT format), else None (then the failure is ours)."""
        try:
            OrtRunner(model, level="disable").run(feeds)
        except Exception as e:  # noqa: BLE001  (any ORT failure: classified below)
            return ort_refusal(model, str(e))
        return None

    def runner(self, artifact: Artifact, threads: int) -> OrtRunner:
        return OrtRunner(artifact.path, threads=threads, level="disable", name="onnxruntime (ORT format)")

    def supported_ops(self, target=None) -> dict[str, str]:
        """The ONNX ops of the opset the target's ORT Mobile version implements (runtime_version), not of the
        onnx/onnxruntime installed here (1.32 has Attention; ORT Mobile 1.20 does not)."""
        opset = ort_opset(target.runtime_version if target is not None else None)
        ops = sorted({s.name for s in onnx.defs.get_all_schemas_with_history()
                      if s.domain == "" and s.since_version <= opset})
        return {op: "" for op in ops}
