"""Where a run is: the next step to take, saved in every checkpoint as ``position``.

The loop advances it, the epoch-end evaluation keeps a converging phase's plateau and the phase's
dev-selected epoch in it, and a resumed run restores it, so all three agree on the step a run continues
from and on the epoch ``phaseN-best.pt`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Position:
    """Where the run is: the next step to take. ``entered`` says whether the phase's masks are set."""

    phase: int = 0
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    entered: bool = False
    phase_seconds: float = 0.0  # training time spent in this phase, across resumptions
    # a phase that ends at convergence: its rule's state (dsd_seq.core.convergence.Plateau)
    plateau_best: float | None = None
    plateau_since_best: int = 0
    # the phase's dev-selected epoch so far (dsd_seq.training.dev_selection): epochs done then, and value
    best_epoch: int | None = None
    best_value: float | None = None
    best_step: int | None = None  # the global step of its checkpoint, checked before it is used
    epoch_values: list[float | None] = field(default_factory=list)  # the monitored value after each epoch
