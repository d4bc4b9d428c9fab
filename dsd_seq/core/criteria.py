"""Pruning criteria, chosen by name with ``masking.criterion``: how important each weight is.

A criterion is a plain function ``score(name, weight) -> scores``: one score per weight, the shape of the
weight, higher meaning more worth keeping. It only orders the weights; the masks (``masks.py``) keep the k
highest scores per layer, or across layers with ``masking.scope: global`` (then scores must be comparable
between layers). So a criterion cannot change how many weights are kept, nor the tie rule (lower index
first).

Adding one is a function and a line in :data:`CRITERIA`. The function runs under ``torch.no_grad()`` and
gets the parameter itself (its ``.grad`` is there for gradient-based scores). Under torchrun every rank
computes its own masks and the trainer checks that they agree, so a criterion must give the same scores on
every rank for the same weights (a random one must be seeded alike).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

#: ``score(name, weight) -> scores``: a tensor of the weight's shape, higher = keep.
ScoreFunction = Callable[[str, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Criterion:
    """A registered criterion. ``nonnegative``: its scores never have the sign bit set (``abs()`` values;
    no -0.0), which lets the top-k skip the pass that looks for negative scores (0.1 s of CPU for a
    67M-parameter model, about a quarter of the masks' cost)."""

    score: ScoreFunction
    nonnegative: bool = False


def magnitude(name: str, weight: torch.Tensor) -> torch.Tensor:
    """|w|: the paper's criterion (Sec. 2, Algorithm 1: sort |W| and keep the k largest of each layer)."""
    return weight.detach().abs()


#: Criteria by the name ``masking.criterion`` gives them.
CRITERIA: dict[str, Criterion] = {
    "magnitude": Criterion(magnitude, nonnegative=True),
}
