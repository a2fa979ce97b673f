"""ONNX op lowerings, grouped by family. Importing this package fills the registry."""

from edgec.lower.coreml.ops import (  # noqa: F401  (imported for their @lowers side effect)
    activation,
    conv,
    elementwise,
    matmul,
    norm,
    pool,
    quant,
    recurrent,
    reduce,
    resize,
    shape,
)
