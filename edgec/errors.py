"""Every failure a user can cause is an EdgecError with an exit code and a one-paragraph message.

The CLI prints `message` and exits with `exit_code`; a traceback only with --debug.
Messages name the file / node / YAML line and say what to do.
"""

from __future__ import annotations


class EdgecError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # one paragraph, no trailing whitespace
        return " ".join(self.message.split())


class UsageError(EdgecError):
    """A command-line flag is wrong or contradicts another one."""

    exit_code = 2
    kind = "usage error"


class ConfigError(EdgecError):
    """A profile or target YAML is wrong (unknown key, wrong type, missing field, bad YAML)."""

    exit_code = 3
    kind = "config error"


class ModelLoadError(EdgecError):
    """The model file is missing, empty, truncated, not ONNX, or has unsafe external data."""

    exit_code = 4
    kind = "model error"


class ShapeError(EdgecError):
    """A dynamic dimension could not be fixed, or a given shape does not fit the model."""

    exit_code = 5
    kind = "shape error"


class UnsupportedOp(EdgecError):
    """One or more nodes cannot be lowered for a target. Lists every such node, not only the first."""

    exit_code = 6
    kind = "unsupported op"

    def __init__(self, target: str, problems: list[tuple[str, str, str]], roots: list | None = None,
                 dependents: int = 0, hints: list[str] = ()):
        """problems: (op_type, node_name, why) for every node the target cannot take. roots (optional, from
        graph/diagnose.py): the refused nodes whose inputs are all supported; the message then lists only
        those, counts the `dependents`, and adds `hints` (inputs that would fold a root)."""
        self.target = target
        self.problems = problems
        self.roots = roots or problems
        shown = self.roots
        lines = "; ".join(f"{op} node '{name}': {why}" for op, name, why in shown)
        if roots is not None and dependents:
            head = (f"{len(problems)} node(s) cannot be lowered for target '{target}'; the root cause"
                    f"{'s are' if len(shown) > 1 else ' is'} (inputs all supported): {lines}; "
                    f"{dependents} more node(s) depend on {'them' if len(shown) > 1 else 'it'}")
        else:
            head = f"{len(problems)} node(s) cannot be lowered for target '{target}': {lines}"
        hint = "".join(f" {h}." for h in hints)
        super().__init__(
            f"{head}.{hint} "
            f"Run `edgec check MODEL` for the per-target op support table, rewrite or remove these "
            f"nodes before export, or pick a target that supports them."
        )


class CalibrationError(EdgecError):
    """Calibration data is missing, empty, or does not fit the model's inputs."""

    exit_code = 7
    kind = "calibration error"


class ValidationDataError(CalibrationError):
    """--validation-data / validate.data is missing, empty, or does not fit the model's inputs (read as calibration
    data is, so the same exit code)."""

    kind = "validation data error"


class LoweringError(EdgecError):
    """A backend failed to produce or save an artifact for a reason other than an unsupported op."""

    exit_code = 8
    kind = "lowering error"


class OutputError(EdgecError):
    """The output folder or file cannot be written."""

    exit_code = 9
    kind = "output error"


class DeviceError(EdgecError):
    """An attached device (adb, ssh, Mac) cannot be reached or failed to run the artifact."""

    exit_code = 10
    kind = "device error"


class ValidationFailed(EdgecError):
    """Artifacts were built but at least one numerics or latency check failed (exit code for the build)."""

    exit_code = 11
    kind = "validation failed"


class InternalError(EdgecError):
    """A bug in edgec or a dependency, or a crash of a native runtime, confined to one target of a multi-target
    build: that target fails with this, the others still build (a single-target build exits 70 as before)."""

    exit_code = 70
    kind = "internal error"
class ReferenceNotFinite(EdgecError):
    """ONNX Runtime's output of the original model is NaN/Inf on the validation inputs: nothing to compare with."""

    exit_code = 12
    kind = "reference not finite"


class QuantizationError(EdgecError):
    """The quantized model cannot reach the profile's `quantize.target` accuracy within its bounds."""

    exit_code = 13
    kind = "quantization error"
