"""`quantize.target`: grow float islands until the int8 graph meets a stated accuracy.

Measured on held-out samples (never calibrated on) against the float graph, in ONNX Runtime on the QDQ graph: the
numerics every target shares (TFLite and ORT run the same scales; iOS16 keeps activations float, closer still).
A candidate node set is cut into the calibrated graph as float islands (islands.with_float_islands), never
re-quantized. The worst nodes by the error they add (sensitivity.rank_nodes) are measured float one at a time;
then one node per round goes float, the best output-cosine gain per float weight element among the islands'
neighbours and the best remaining candidate, until the goal is met; then every chosen node whose removal still
meets it goes back to int8 (the fewest nodes). Bounded by counts (`candidates`, `max_float_nodes`,
`max_float_weight_fraction`, PATIENCE), never by a clock, so the same inputs give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx

from edgec.config.models import QuantTarget
from edgec.errors import CalibrationError, QuantizationError
from edgec.quantize.activations import run_named, session_with_outputs
from edgec.quantize.sensitivity import NodeSensitivity
from edgec.runtimes.outputs import output_accuracy


# a node with no weights still costs something (its float activations, one more island boundary): ranked by gain
# per float weight element, it would otherwise come first whatever its gain
MIN_COST = 1024
PATIENCE = 4  # rounds in a row the island grows without beating its best score: then the search stops
# top-1 decisions per sample (rows of a [1, T, classes] output) from which top-1 is a fine-grained measure of merit:
# a CTC recognizer's T steps each decide; a classifier's one row per sample does not
MANY_ROWS = 8


@dataclass(frozen=True)
class Score:
    top1: float | None  # worst top-1 agreement over classifier outputs; None: no classifier output
    cosine: float  # worst output cosine (Softmax outputs as logits)
    rows: int = 1  # top-1 decisions per sample of the classifier outputs (the fewest over them)

    def key(self, top1_first: bool = False) -> tuple[float, float]:
        """Order of merit: the cosine first, top-1 breaks its ties. Top-1 over a few dozen samples moves in whole
        samples, and which near-tie flips under a perturbation is noise: ordered by top-1 first, the search chased
        it on EfficientNet-Lite0 (a node worth one sample alone lost three with the next); the cosine sees every
        node's gain. The goal itself is still top-1 (meets).
        `top1_first` (goal top-1 only, MANY_ROWS decisions per sample: top1_first_for): top-1 first. On a CTC
        recognizer's [1, T, 6625] Softmax the cosine over all classes is mostly the unlikely classes' noise, and
        top-1 over T steps per sample moves in fine steps."""
        top1 = 1.0 if self.top1 is None else self.top1
        return (top1, self.cosine) if top1_first and self.top1 is not None else (self.cosine, top1)

    def meets(self, goal: QuantTarget) -> bool:
        top1_ok = goal.min_top1_agreement is None or self.top1 is None or self.top1 >= goal.min_top1_agreement
        return top1_ok and (goal.min_cosine is None or self.cosine >= goal.min_cosine)

    def words(self) -> str:
        return (f"top-1 agreement {self.top1:.3f}, " if self.top1 is not None else "") + f"cosine {self.cosine:.5f}"

    def as_dict(self) -> dict:
        return {"top1": None if self.top1 is None else round(self.top1, 6), "cosine": round(self.cosine, 6)}


@dataclass
class Step:
    node: str | None  # the node this step left float (None: all int8; removed: went back to int8)
    op_type: str | None
    score: Score
    action: str = "float"  # "float" | "int8 again" (pruned) | "start"

    def as_dict(self) -> dict:
        return {"action": self.action, "node": self.node, "op_type": self.op_type, **self.score.as_dict()}


def goal_words(goal: QuantTarget) -> str:
    parts = []
    if goal.min_top1_agreement is not None:
        parts.append(f"top-1 agreement >= {goal.min_top1_agreement}")
    if goal.min_cosine is not None:
        parts.append(f"cosine >= {goal.min_cosine}")
    return " and ".join(parts)


def split_held_out(calib: list[int], fraction: float) -> tuple[list[int], list[int]]:
    """(calibrate, held out): every k-th calibration file (k = round(1 / fraction)) is held out, so both parts
    span the whole sorted folder (crops of one photo sit together; a tail would hold out one scene)."""
    k = max(2, int(round(1 / fraction)))
    held = calib[k - 1::k]
    rest = [i for i in calib if i not in set(held)]
    if len(held) < 2 or not rest:
        raise CalibrationError(
            f"quantize.target needs at least 2 held-out samples besides the calibration ones, and "
            f"{len(calib)} calibration sample(s) with held_out_fraction {fraction} give {len(held)}: add samples "
            f"to the calibration folder, raise quantize.target.held_out_fraction, or give a separate folder as "
            f"quantize.target.held_out."
        )
    return rest, held


def score(reference: list[dict[str, np.ndarray]], model: onnx.ModelProto, feeds: list[dict],
          kinds: dict) -> Score:
    """The QDQ `model` against the float `reference` outputs on `feeds`, as the accuracy gate measures it."""
    sess = session_with_outputs(model, [])
    got = [run_named(sess, f) for f in feeds]
    top1, cos, rows = [], [], []
    for name in reference[0]:
        m, kind = output_accuracy(name, [r[name] for r in reference], [g[name] for g in got], kinds)
        cos.append(float(m.cosine))
        if m.top1 is not None:
            top1.append(float(m.top1))
            ref = reference[0][name]
            rows.append(ref.size // max(1, ref.shape[kind.class_axis]))
    return Score(min(top1) if top1 else None, min(cos), min(rows) if rows else 1)


def top1_first_for(goal: QuantTarget, start: Score) -> bool:
    """Whether the search orders by top-1 first (Score.key): the goal is top-1 alone, on outputs with many rows."""
    return goal.min_cosine is None and start.top1 is not None and start.rows >= MANY_ROWS


def search(ranked: list[NodeSensitivity], measure: Callable[[list[str]], Score], goal: QuantTarget,
           held_out: str, weights: dict[str, int] | None = None,
           neighbours: dict[str, list[str]] | None = None,
           quantized: str = "int8") -> tuple[list[str], list[Step]]:
    """(nodes to keep float, the steps taken with the score after each). `weights`: node -> float weight elements
    it would add (what a float node costs in size); the float nodes together stay within
    goal.max_float_weight_fraction of all of them. `neighbours`: node -> the nodes it shares a tensor with, where
    an island grows (a tensor between two float nodes loses its Q/DQ, which a node alone cannot show). Measured:
    the candidates alone, then per round (one node each, at most max_float_nodes rounds) the island's neighbours
    and the next seed. Raises QuantizationError when the goal is out of reach within the bounds."""
    weights, neighbours = weights or {}, neighbours or {}
    budget = goal.max_float_weight_fraction * sum(weights.values())
    memo: dict[tuple[str, ...], Score] = {}

    def cached(nodes: list[str]) -> Score:
        key = tuple(sorted(nodes))
        if key not in memo:
            memo[key] = measure(list(key))
        return memo[key]

    ops = {s.node: s.op_type for s in ranked}
    current = cached([])
    steps = [Step(None, None, current, "start")]
    if current.meets(goal):
        return [], steps
    first = top1_first_for(goal, current)

    def merit(s: Score) -> tuple[float, float]:
        return s.key(first)
    # zero local error and no weights: the node shares its input's scale (MaxPool, Concat, Reshape), nothing to
    # gain. A node with weights can rank zero because its input already carries more error than its output
    # (behind a float PRelu), and still gain when float: its int8 weights add error the ranking cannot see.
    tried = [s.node for s in ranked if s.local_error > 0 or weights.get(s.node, 0) > 0][:goal.candidates]
    alone = {n: cached([n]) for n in tried}
    base = merit(current)

    def per_cost(n: str, trial: Score, before: Score) -> float:
        """Merit (cosine, or top-1 when first) gained per float weight element (the size bar): cheap nodes first."""
        return (merit(trial)[0] - merit(before)[0]) / (weights.get(n, 0) + MIN_COST)

    seeds = sorted((n for n in tried if merit(alone[n])[0] > base[0]),
                   key=lambda n: (-per_cost(n, alone[n], steps[0].score), n))
    chosen: list[str] = []
    spent, over, flat = 0, [], 0
    best = (current, 0)  # the best score on the way, and how many of `chosen` it had
    while not current.meets(goal) and len(chosen) < goal.max_float_nodes and flat < PATIENCE:
        # one node per round, the best gain per cost among: the island's neighbours, measured next to it (a tensor
        # between two float nodes loses its Q/DQ, which neither node alone shows), and the best remaining seed
        def fit(m: str) -> bool:
            return spent + weights.get(m, 0) <= budget or not weights

        pool = sorted({m for c in chosen for m in neighbours.get(c, []) if m in ops and m not in chosen})
        rest = [n for n in seeds if n not in chosen and n not in pool]
        # the best remaining seed that fits the size bound (one over it must not hide the next)
        over = [m for m in pool if not fit(m)] + [n for n in rest if not fit(n)][:1]
        fits = [m for m in pool if fit(m)] + [n for n in rest if fit(n)][:1]
        trials = {m: cached(chosen + [m]) for m in fits}
        if not trials:
            break
        pick = max(trials, key=lambda m: (per_cost(m, trials[m], current), m))
        # int8 errors partly cancel: a larger island can dip before it gains, so a few rounds may not improve
        flat = 0 if merit(trials[pick]) > merit(best[0]) else flat + 1
        chosen.append(pick)
        spent += weights.get(pick, 0)
        current = trials[pick]
        steps.append(Step(pick, ops.get(pick), current))
        if merit(current) > merit(best[0]):
            best = (current, len(chosen))
    if not current.meets(goal):
        current, chosen = best[0], chosen[:best[1]]
        raise QuantizationError(_cannot(goal, current, chosen, len(tried), held_out, over, quantized))
    for n in list(reversed(chosen)):  # fewest nodes: undo any choice the goal does not need
        if len(chosen) == 1:
            break
        trial = cached([c for c in chosen if c != n])
        if trial.meets(goal):
            chosen.remove(n)
            current = trial
            steps.append(Step(n, ops.get(n), trial, "int8 again"))
    return chosen, steps


def _cannot(goal: QuantTarget, best: Score, chosen: list[str], tried: int, held_out: str,
            over: list[str] = (), quantized: str = "int8") -> str:
    """`quantized`: what the graph is, in words ("int8", "int8 weights with int16 activations")."""
    bound = (f"the count bound max_float_nodes={goal.max_float_nodes} was reached"
             if len(chosen) >= goal.max_float_nodes else
             f"no other of the {tried} most sensitive node(s) measured (candidates={goal.candidates}) improved it")
    if over:
        bound += (f"; {len(over)} more would have passed max_float_weight_fraction={goal.max_float_weight_fraction} "
                  f"of the weights float (the int8 size)")
    kept = f"{len(chosen)} node(s) float ({', '.join(chosen)})" if chosen else "every node int8"
    return (
        f"quantize.target cannot be met: {quantized} reaches at best {best.words()} with {kept} on {held_out}, and the "
        f"profile asks for {goal_words(goal)}; {bound}. Try: more or more representative calibration samples, "
        f"a higher quantize.target.candidates / max_float_nodes / max_float_weight_fraction, quantize.calibration.method auto "
        f"(per-tensor ranges), keep_float for the sensitive op types, a lower target, or --quantize int8-weights / fp16."
    )

