"""How well each phase's model fits its training data: the mean training loss over the phase's last epoch,
read back from the run's ``metrics.jsonl``.

Why: the paper prunes a converged model, and whether DSD can help depends on how far the training loss
sits below the held-out loss (a model that fits its training set no better than its dev set has nothing
to regularise). The comparison report sets this train loss beside each phase's dev loss. It is the
running loss of the updates themselves (dropout and augmentation on, the weights moving during the
epoch), as training curves show it, not a separate pass over the training set.
"""

from __future__ import annotations

import json
from pathlib import Path

METRICS_NAME = "metrics.jsonl"


def last_epoch_train_loss(metrics_path: str | Path) -> dict[int, float]:
    """``{phase: mean training loss over its last epoch}`` for every finished phase the log holds.

    A resumed run logs the steps it replays again; the last line of a step counts. A run that started
    from another run's phase end (``--init-from``) has no training steps for the phases it skipped, so
    they are absent here; the run store takes them from the run it continued."""
    path = Path(metrics_path)
    if not path.is_file():
        return {}
    losses: dict[int, float] = {}
    boundaries: dict[int, set[int]] = {}
    ends: dict[int, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a torn last line of a crash
        kind, step = event.get("event"), event.get("step")
        if kind == "train" and "loss" in event:
            losses[step] = float(event["loss"])
        elif kind in ("phase_start", "epoch"):
            boundaries.setdefault(int(event.get("phase", -1)), set()).add(step)
        elif kind == "phase_end":
            ends[int(event["phase"])] = step
    result = {}
    for phase, end in ends.items():
        start = max((b for b in boundaries.get(phase, ()) if b < end), default=None)
        steps = [] if start is None else [losses[s] for s in range(start, end) if s in losses]
        if steps:
            result[phase] = sum(steps) / len(steps)
    return result
