"""Gradual magnitude pruning's sparsity ramp (Zhu & Gupta 2017, "To prune, or not to prune"; Narang et al.
2017 pruned DeepSpeech's RNNs to ~90% during training with a rising threshold).

A gradual phase starts at sparsity ``start`` and rises to the phase's own sparsity ``s_f`` over the first
``end`` fraction of its optimizer steps, recomputing the masks by magnitude every ``every`` steps (and once
more at the ramp's last step, so the final sparsity is always reached), then holds it. After ``k`` of
the phase's ``T`` steps, with ``K = ceil(end * T)``:

- ``cubic`` (Zhu & Gupta's form): ``s = s_f + (start - s_f) * (1 - k/K)**3``: prunes fast while many small
  weights are left, slowly near the end;
- ``linear``: ``s = start + (s_f - start) * k/K``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SHAPES = ("cubic", "linear")


class RampError(ValueError):
    """A ramp setting out of range; the message names the setting."""


@dataclass(frozen=True)
class Ramp:
    """The settings of a gradual phase (its final sparsity and learning rate are the phase's)."""

    start: float = 0.0  # the sparsity when the phase starts (written ``from=`` in a schedule)
    every: int = 100  # optimizer steps between mask updates (Zhu & Gupta's Δt)
    shape: str = "cubic"
    end: float = 0.75  # the fraction of the phase's steps after which the final sparsity holds

    def validate(self, where: str, final: float) -> None:
        if not (isinstance(self.start, int | float) and 0.0 <= self.start <= final):
            raise RampError(f"{where}: from={self.start!r} must be in [0, {final:g}] (the phase's sparsity)")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise RampError(f"{where}: every={self.every!r} must be a whole number of steps >= 1")
        if self.shape not in SHAPES:
            raise RampError(f"{where}: shape={self.shape!r}; accepted: {', '.join(SHAPES)}")
        if not (isinstance(self.end, int | float) and 0.0 < self.end <= 1.0):
            raise RampError(f"{where}: end={self.end!r} must be in (0, 1] (a fraction of the phase)")

    def last_step(self, steps: int) -> int:
        """The step (1-based count) at which the final sparsity is reached: ceil(end * steps), at least 1."""
        return max(1, math.ceil(self.end * steps - 1e-9))

    def updates_at(self, step: int, steps: int) -> bool:
        """Whether the masks are recomputed after the phase's ``step``-th optimizer step."""
        last = self.last_step(steps)
        return 0 < step <= last and (step % self.every == 0 or step == last)

    def sparsity_at(self, step: int, steps: int, final: float) -> float:
        progress = min(1.0, step / self.last_step(steps))
        if self.shape == "cubic":
            return final + (self.start - final) * (1.0 - progress) ** 3
        return self.start + (final - self.start) * progress
