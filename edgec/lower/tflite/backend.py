"""TFLite / LiteRT backend: our own ONNX -> TFLite flatbuffer lowering, run by LiteRT with XNNPACK."""

from __future__ import annotations

import onnx

from edgec.artifact import Artifact, LowerContext
from edgec.errors import LoweringError, UnsupportedOp
from edgec.graph.dynamic import model_ranges
from edgec.graph.passes import only_16_bit_activations, without_activation_qdq
from edgec.lower.tflite.convert import convert
from edgec.lower.tflite.qdq import int8_note, io_quant
from edgec.lower.tflite.registry import REGISTRY
from edgec.runtimes.host_litert import LiteRTRunner, xnnpack_coverage


class TFLiteBackend:
    format = "tflite"

    def unsupported(self, model: onnx.ModelProto) -> list[tuple[str, str, str]]:
        """Every node the registry cannot lower (missing op, or an attribute value it rejects)."""
        return convert(model, write=False).problems

    def as_built(self, model: onnx.ModelProto, artifact: Artifact) -> tuple[onnx.ModelProto, str | None]:
        """(graph, None) the file runs: int16 activations run float on int8 weights (the 16-bit Q/DQ pairs dropped);
        16x8 kernels compute that arithmetic too, so a float estimate is their best case."""
        return (without_activation_qdq(model)[0] if artifact.details.get("int16_activations") else model), None

    def lower(self, model: onnx.ModelProto, ctx: LowerContext) -> Artifact:
        if ctx.precision not in ("fp32", "fp16", "int8", "int8-weights", "int8-dynamic"):
            raise LoweringError(f"TFLite lowering of precision '{ctx.precision}' is not implemented yet "
                                f"(fp32, fp16, int8, int8-weights are).")
        fp16 = ctx.precision == "fp16"
        nhwc_io = ctx.profile.tflite.io_layout == "nhwc"
        int8_io = ctx.profile.tflite.io_dtype == "int8"
        if int8_io and ctx.precision != "int8":
            raise LoweringError(f"tflite.io_dtype: int8 needs quantize.mode int8 (this build is {ctx.precision}).")
        dynamic = ctx.profile.tflite.dynamic_batch
        wide = ctx.precision == "int8" and only_16_bit_activations(model)
        float_16 = wide and ctx.profile.tflite.int16_activations == "float"
        if float_16:
            model, pairs = without_activation_qdq(model)
        lengths = model_ranges(model)  # ranged input axes (edgec.graph.dynamic): -1 on every axis that follows them
        if lengths and dynamic:
            raise LoweringError("tflite.dynamic_batch and an input range (dynamic length) in one build are not "
                                "supported yet: drop one of them.")
        if lengths:
            from edgec.lower.tflite.dynamic import convert_lengths

            result = convert_lengths(model, lengths, fp16=fp16, write=True, keep_float=set(ctx.profile.quantize.keep_float),
                                     nhwc_io=nhwc_io, int8_io=int8_io)
        else:
            result = convert(model, fp16=fp16, keep_float=set(ctx.profile.quantize.keep_float), nhwc_io=nhwc_io,
                             int8_io=int8_io, dynamic_batch=dynamic, dynamic_range=ctx.precision == "int8-dynamic")
        if result.problems:
            raise UnsupportedOp(ctx.target.name, result.problems)
        if ctx.precision == "int8" and not float_16 and not result.stats.get("int8", {}).get("int8_ops"):
            raise LoweringError("int8 was asked but no op of this model maps to a TFLite int8 kernel (it has no "
                                "DequantizeLinear -> op -> QuantizeLinear group); refusing to write a float model.")
        path = ctx.staging_dir / f"{ctx.model_name}{ctx.target.extension or '.tflite'}"
        path.write_bytes(result.data)
        s = result.stats
        notes = [
            f"TFLite schema v3 flatbuffer, {sum(result.op_histogram.values())} ops "
            f"({len(result.op_histogram)} kinds), signature 'serving_default' with the ONNX input/output names",
            f"layout: {s['nhwc_ops']} ops run channels-last; {s['transpose_ops']} TRANSPOSE ops left "
            + ("(model inputs/outputs keep the ONNX layout)" if not s["nhwc_io"] else
               f"(channels-last model inputs/outputs: {', '.join(s['nhwc_io'])})")
            + f"; {s['fused_activations']} activations fused",
        ]
        coverage = xnnpack_coverage(path)
        cpu = coverage["cpu"]
        taken = sum(coverage["xnnpack"].values())
        notes.append(f"XNNPACK took {taken} of {taken + sum(cpu.values())} ops" + (
            "; on LiteRT's own CPU kernels: " + ", ".join(f"{k} x{v}" for k, v in cpu.items()) if cpu else "")
            + " (from the interpreter's DELEGATE nodes)")
        if float_16:
            notes.append(f"int16 activations run float (tflite.int16_activations: float; {pairs} 16-bit Q/DQ pairs "
                         f"dropped), weights int8 with DEQUANTIZE: within a 16-bit step of the ORT artifact, at "
                         f"float speed. tflite.int16_activations: kernels writes LiteRT's 16x8 ops instead (for NPU "
                         f"delegates; on CPU they run outside XNNPACK as reference kernels, many times slower)")
        elif ctx.precision in ("int8", "int8-weights"):
            notes.append(int8_note(result.stats.get("int8", {}), result.op_histogram, s.get("quant_ops")))
        if ctx.precision == "int8-dynamic":
            notes.append(f"int8-dynamic: FULLY_CONNECTED x{result.op_histogram.get('FULLY_CONNECTED', 0)} with int8 "
                         f"weights (dynamic-range: inputs quantized per row at run time); "
                         f"{result.op_histogram.get('DEQUANTIZE', 0)} DEQUANTIZE of int8 weights/tables of other ops")
        quantized_io = io_quant(result.data) if int8_io else {}
        if quantized_io:
            notes.append("int8 model I/O: " + ", ".join(f"{k} scale {v['scale']:.6g} zero point {v['zero_point']}"
                                                         for k, v in quantized_io.items()))
        if dynamic:
            d = s["dynamic_batch"]
            notes.append(f"dynamic batch: axis 0 of the inputs/outputs is -1 in the shape signature (default and "
                         f"validated batch {d['batch']}; lowered alike at batches {d['probes'][0]} and "
                         f"{d['probes'][1]}); resize_tensor_input to run another batch")
        if lengths:
            d = s["dynamic_lengths"]
            notes.append(f"dynamic lengths: -1 in the shape signature on {', '.join(f'{n} axis {a}' for n, ax in d['axes'].items() for a in ax)} "
                         f"and every axis that follows them (default and max {d['lengths'][0]}; lowered alike at "
                         f"{d['lengths'][1]}); resize_tensor_input to run another length")
        if s.get("float64_io"):
            notes.append("float64 computed as float32 (TFLite kernels take float32): CAST at "
                         + ", ".join(s["float64_io"]))
        if fp16:
            notes.append("fp16 weights with DEQUANTIZE to float32 (TFLite float16 scheme; compute stays fp32 on CPU)")
        return Artifact(
            target=ctx.target.name, profile=ctx.profile.name, format=self.format, path=path,
            precision=ctx.precision, notes=notes,
            details={"ops": result.op_histogram, "layout": s, "xnnpack": coverage,
                     "io_layout": {n: "NHWC" for n in s["nhwc_io"]},
                     **({"dynamic_batch": s["dynamic_batch"]} if dynamic else {}),
                     **({"dynamic_axes": {n: {str(a): [lo, hi] for a, (lo, hi, _) in ax.items()}
                                          for n, ax in lengths.items()}} if lengths else {}), **({"io_quant": quantized_io} if quantized_io else {}),
                     **({"int16_activations": ctx.profile.tflite.int16_activations} if wide else {})},
        )

    def runner(self, artifact: Artifact, threads: int) -> LiteRTRunner:
        return LiteRTRunner(artifact.path, threads=threads)  # the I/O layout is read from the file's metadata

    def int8_ops(self) -> frozenset[str]:
        """ONNX ops folded into TFLite int8 kernels between Q/DQ (the estimator prices them as int8)."""
        from edgec.lower.tflite.qdq import OWN_INT8, PASS_INT8

        return frozenset(OWN_INT8 | PASS_INT8)

    def supported_ops(self, target=None) -> dict[str, str]:
        return {op: rule.note for op, rule in sorted(REGISTRY.items())
                if not rule.flags.get("float_kernel") and not rule.flags.get("internal")}
