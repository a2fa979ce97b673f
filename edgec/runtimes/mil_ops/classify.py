"""classify: the op a CoreML classifier ends with (iOS15 classify)."""

from __future__ import annotations

import numpy as np

from . import mil_op


@mil_op("classify")
def classify(probabilities, classes):
    """(label with the highest score, {label: score}); scores pass through unchanged (no softmax)."""
    scores = np.asarray(probabilities).reshape(-1)
    labels = [c.item() if isinstance(c, np.generic) else c for c in np.asarray(classes).reshape(-1)]
    if len(labels) != scores.size:
        raise ValueError(f"classify has {len(labels)} classes for {scores.size} scores")
    return labels[int(np.argmax(scores))], {label: float(v) for label, v in zip(labels, scores)}
