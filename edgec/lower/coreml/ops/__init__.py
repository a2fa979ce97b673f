"""ONNX op lowerings, grouped by family. Importing this package fills the registry."""

from edgec.lower.coreml.ops import (  # noqa: F401  (imported for their @lowers side effect)
    activation,
    attention,
    conv,
    einsum,
    elementwise,
    index,
    logic,
    loss,
    math,
    matmul,
    misc,
    norm,
    pool,
    quant,
    reduce,
    resize,
    shape,
    spectral,
)
