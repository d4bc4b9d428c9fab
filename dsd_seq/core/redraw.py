"""Dynamic sparse training: masks redrawn during a sparse phase at a constant sparsity.

RigL (Evci et al. 2020, "Rigging the Lottery"): every ``every`` optimizer steps (ΔT) until the ``end``
fraction of the phase, each layer drops the ``n`` active weights of smallest |w| and grows the ``n``
inactive ones of largest dense-gradient magnitude |g|, where ``n = floor(f * active)`` and the drop
fraction decays as a cosine, ``f = drop / 2 * (1 + cos(pi * k / (end * T)))`` after ``k`` of the phase's
``T`` steps. SET (Mocanu et al. 2018) grows at random instead (``grow=random``). A grown weight starts
at exactly zero with zero optimizer state; the layer's sparsity does not change. A weight dropped and
grown again in the same redraw is kept as it was (RigL's own rule: it is not a new connection).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dsd_seq.core.masks import top_k_mask

GROWTH = ("gradient", "random")


class RedrawError(ValueError):
    """A redraw setting out of range; the message names the setting."""


@dataclass(frozen=True)
class Redraw:
    """The settings of a RigL/SET phase (its sparsity and learning rate are the phase's)."""

    every: int = 100  # optimizer steps between redraws (ΔT)
    drop: float = 0.3  # the drop fraction at the phase's start (α), decayed by a cosine
    grow: str = "gradient"  # RigL: largest |gradient|; random: SET
    end: float = 0.75  # the fraction of the phase's steps after which the masks stay fixed (T_end)

    def validate(self, where: str) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise RedrawError(f"{where}: every={self.every!r} must be a whole number of steps >= 1")
        if not (isinstance(self.drop, int | float) and 0.0 < self.drop <= 1.0):
            raise RedrawError(
                f"{where}: drop={self.drop!r} must be in (0, 1] (a fraction of the active weights)"
            )
        if self.grow not in GROWTH:
            raise RedrawError(f"{where}: grow={self.grow!r}; accepted: {', '.join(GROWTH)}")
        if not (isinstance(self.end, int | float) and 0.0 < self.end <= 1.0):
            raise RedrawError(f"{where}: end={self.end!r} must be in (0, 1] (a fraction of the phase)")

    @property
    def method(self) -> str:
        return "rigl" if self.grow == "gradient" else "set"

    def updates_at(self, step: int, steps: int) -> bool:
        """Whether the masks are redrawn after the phase's ``step``-th optimizer step."""
        return step > 0 and step % self.every == 0 and step < self.end * steps

    def drop_fraction(self, step: int, steps: int) -> float:
        return self.drop / 2.0 * (1.0 + math.cos(math.pi * step / (self.end * steps)))


def redraw_mask(
    mask: torch.Tensor, weight: torch.Tensor, grow_scores: torch.Tensor, fraction: float
) -> tuple[torch.Tensor, int]:
    """One layer's new mask and how many weights it drops (and grows): ``floor(fraction * active)`` of
    the active weights with smallest |w| leave, as many inactive ones with largest ``grow_scores`` (>= 0)
    come in. Ties keep the lower flat index, as every mask here."""
    active = int(mask.sum())
    count = math.floor(fraction * active)
    if count <= 0:
        return mask.clone(), 0
    with torch.no_grad():
        magnitude = weight.detach().abs().float()
        survivors = top_k_mask(torch.where(mask, magnitude, torch.full_like(magnitude, -1.0)), active - count)
        scores = grow_scores.detach().float().to(mask.device)
        grown = top_k_mask(torch.where(survivors, torch.full_like(scores, -1.0), scores), count)
    return survivors | grown, count
