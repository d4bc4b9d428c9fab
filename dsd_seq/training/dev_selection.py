"""Each phase's dev-selected epoch: the epoch a practitioner would keep, chosen on held-out data alone.

A phase that ends at convergence selects on the quantity its ``until`` rule monitors; a fixed phase on
``train.select_on`` (``dev_loss`` by default, or e.g. ``dev_bleu4``). The monitor's split must be one the
task has, and never ``test``: the test split is scored at the selected epoch, never chosen on. A task
without a ``dev`` split records no selection by default; a ``select_on`` naming a split the task lacks is
refused when the trainer is built.

The trainer keeps the best epoch in its checkpointed position, names its checkpoint
``phaseN-best.pt`` and scores it on every eval split at the phase end; ``train.handover: best`` hands
that epoch's weights and optimizer state to the next phase instead of the last epoch's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dsd_seq.core.convergence import FORBIDDEN_SPLITS, Until
from dsd_seq.core.schedule import Phase

DEFAULT_SELECT_ON = "dev_loss"
#: What a phase hands to the next: its last epoch (the paper's) or its dev-selected one.
HANDOVERS = ("last", "best")


@dataclass(frozen=True)
class Monitor:
    """The held-out quantity a phase's best epoch is chosen on."""

    split: str
    name: str
    higher_is_better: bool

    @property
    def key(self) -> str:
        return f"{self.split}_{self.name}"

    def improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` is strictly better than ``best`` (None: nothing yet); NaN/inf never is."""
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


def check_select_on(select_on: str) -> str | None:
    """Why ``train.select_on`` cannot be used, or None."""
    split, _, name = select_on.partition("_") if isinstance(select_on, str) else ("", "", "")
    if not split or not name:
        return f"train.select_on must be <split>_<metric>, e.g. dev_loss or dev_bleu4, got {select_on!r}"
    if split in FORBIDDEN_SPLITS:
        return (
            f"train.select_on={select_on!r} would choose the kept epoch on test data; name a held-out dev "
            "split, e.g. dev_loss"
        )
    return None


def phase_monitor(
    phase: Phase, select_on: str, task_splits: list[str], task_metric: str, task_higher_is_better: bool
) -> Monitor | None:
    """The monitor of ``phase``: its convergence rule's, else ``select_on``; None when the task lacks
    that split."""
    until = phase.until if phase.until is not None else Until(monitor=select_on)
    if until.split not in task_splits:
        return None
    return Monitor(until.split, until.name, until.higher_is_better(task_metric, task_higher_is_better))
