"""When a phase has converged: the plateau rule of phases that end "when the loss no longer decreases"
(Han et al. 2017, Sec. 4: "The epochs are decided by when the loss converges").

A phase with an :class:`Until` rule is scored after every epoch on a held-out quantity (``dev_loss`` by
default, or e.g. ``dev_wer``); it ends once ``patience`` epochs in a row brought no relative improvement
of at least ``min_delta`` over the best value so far, but never before ``min_epochs`` epochs and never
after the phase's ``epochs`` (its maximum). The phase hands on its last model, not its best one: the
paper continues from where the loss stopped decreasing, and nothing is selected on held-out data.

Pure and torch-free: the trainer keeps a :class:`Plateau` in its checkpointed position, so a run resumed
mid-phase stops at the same epoch as one never interrupted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_MONITOR = "dev_loss"
DEFAULT_PATIENCE = 3
#: splits a phase may never be ended on: stopping when the test score stops improving selects on test data
FORBIDDEN_SPLITS = ("test",)


class ConvergenceError(ValueError):
    """An ``until`` rule that cannot be used; the message names the key and the accepted values."""


@dataclass(frozen=True)
class Until:
    """End the phase when ``monitor`` (``<split>_<name>`` as the metrics log names it) stops improving."""

    monitor: str = DEFAULT_MONITOR
    patience: int = DEFAULT_PATIENCE
    min_delta: float = 0.0  # relative: an improvement must beat the best by this fraction of it
    min_epochs: int = 1

    def validate(self, where: str, max_epochs: int) -> None:
        split, _, name = self.monitor.partition("_")
        if not split or not name:
            raise ConvergenceError(
                f"{where}: until.monitor must be <split>_<metric>, e.g. dev_loss or dev_wer, got {self.monitor!r}"
            )
        if split in FORBIDDEN_SPLITS:
            raise ConvergenceError(
                f"{where}: until.monitor {self.monitor!r} would end the phase on test data (selection on the "
                "test set); monitor a held-out dev split instead, e.g. dev_loss"
            )
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise ConvergenceError(f"{where}: until.patience must be an integer >= 1, got {self.patience!r}")
        if not (isinstance(self.min_delta, int | float) and 0 <= self.min_delta < 1):
            raise ConvergenceError(f"{where}: until.min_delta must be in [0, 1), got {self.min_delta!r}")
        if (
            isinstance(self.min_epochs, bool)
            or not isinstance(self.min_epochs, int)
            or not 1 <= self.min_epochs <= max_epochs
        ):
            raise ConvergenceError(
                f"{where}: until.min_epochs must be an integer in [1, {max_epochs}] (the phase's maximum), "
                f"got {self.min_epochs!r}"
            )

    @property
    def split(self) -> str:
        return self.monitor.partition("_")[0]

    @property
    def name(self) -> str:
        return self.monitor.partition("_")[2]

    def higher_is_better(self, task_metric: str, task_higher_is_better: bool) -> bool:
        """A loss falls; the task's main metric moves the way the task says; anything else is an error
        rate (falls)."""
        return self.name == task_metric and task_higher_is_better

    def describe(self, max_epochs: int) -> str:
        delta = f" by at least {self.min_delta:g} (relative)" if self.min_delta else ""
        return (
            f"until {self.monitor} has not improved{delta} for {self.patience} epoch(s); "
            f"{self.min_epochs}..{max_epochs} epochs"
        )


@dataclass
class Plateau:
    """The state of the rule within one phase: the best value seen and the epochs since it."""

    best: float | None = None
    since_best: int = 0

    def update(self, value: float, min_delta: float, higher_is_better: bool) -> bool:
        """Record one epoch's value; returns whether it improved on the best. A NaN/inf value never does."""
        if not math.isfinite(value):
            self.since_best += 1
            return False
        if self.best is None:
            improved = True
        else:
            margin = abs(self.best) * min_delta
            improved = value > self.best + margin if higher_is_better else value < self.best - margin
        if improved:
            self.best, self.since_best = float(value), 0
        else:
            self.since_best += 1
        return improved

    def converged(self, epochs_done: int, until: Until) -> bool:
        """Whether the phase ends now, after ``epochs_done`` epochs (the maximum is the caller's)."""
        return epochs_done >= until.min_epochs and self.since_best >= until.patience
