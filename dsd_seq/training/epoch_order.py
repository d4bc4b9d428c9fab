"""Which epoch of the run an epoch is, and the seed of its batch order.

An epoch's batches are drawn from a generator seeded by (seed, phase, epoch), so a resumed run draws the
same order again; a task is told the epoch's index over the whole run (e.g. for SortaGrad's first epoch),
which after a phase that ended at convergence counts the epochs it realized, not its maximum.
"""

from __future__ import annotations

from typing import Any

from dsd_seq.core.schedule import Schedule


def epoch_seed(seed: int, phase: int, epoch: int) -> int:
    """The seed of the batch order of ``epoch`` (counted from 0) in ``phase`` (counted from 0)."""
    return (seed * 1_000_003 + phase * 10_007 + epoch) % (2**63)


def epochs_before(schedule: Schedule, results: list[dict[str, Any]], phase: int) -> int:
    """Epochs the run trained before ``phase``: the finished phases' realized epochs (their results
    rows), the schedule's for any not finished."""
    done = [row["epochs"] for row in results[:phase]]
    return sum(done) + sum(p.epochs for p in schedule.phases[len(done) : phase])
