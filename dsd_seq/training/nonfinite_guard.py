"""When skipped (NaN/inf) steps mean the run is not training: too many in a row, or too large a share of a
phase.

A skipped step leaves the weights as they were (:mod:`dsd_seq.training.step`), so a run that skips most
of its steps still ends with rc 0 and a table of untrained scores unless someone counts. The counts live
here, are saved in every checkpoint (a resumed run keeps counting), and span epochs: a run whose epochs
are shorter than ``train.max_nonfinite_steps`` is still stopped, by the share of its phase.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class NonfiniteCounts:
    """Skipped steps: in a row (across epochs and phases), in the current phase, and steps in the phase."""

    in_a_row: int = 0
    phase_skipped: int = 0
    phase_steps: int = 0


class NonfiniteGuard:
    """Counts finite and skipped steps; :meth:`too_many_in_a_row` and :meth:`phase_share_too_high` say
    when to stop (``max_in_a_row``: ``train.max_nonfinite_steps``, ``max_fraction``:
    ``train.max_nonfinite_fraction``)."""

    def __init__(self, max_in_a_row: int, max_fraction: float):
        self.max_in_a_row, self.max_fraction = max_in_a_row, max_fraction
        self.counts = NonfiniteCounts()

    def record(self, skipped: bool) -> None:
        c = self.counts
        c.phase_steps += 1
        if skipped:
            c.in_a_row += 1
            c.phase_skipped += 1
        else:
            c.in_a_row = 0

    def new_phase(self) -> None:
        """A phase's share counts its own steps; a streak of bad steps goes on across the boundary."""
        self.counts = NonfiniteCounts(in_a_row=self.counts.in_a_row)

    @property
    def too_many_in_a_row(self) -> bool:
        return self.counts.in_a_row >= self.max_in_a_row

    @property
    def phase_share(self) -> float:
        c = self.counts
        return c.phase_skipped / c.phase_steps if c.phase_steps else 0.0

    @property
    def phase_share_too_high(self) -> bool:
        return self.phase_share > self.max_fraction

    def describe_share(self) -> str:
        c = self.counts
        return (
            f"{c.phase_skipped} of {c.phase_steps} steps of this phase so far ({100 * self.phase_share:.0f}%) "
            f"were skipped, more than train.max_nonfinite_fraction={self.max_fraction:g}"
        )

    def state_dict(self) -> dict[str, int]:
        return asdict(self.counts)

    def load_state_dict(self, state: dict[str, int] | None) -> None:
        """Checkpoints written before these counts existed start them at zero."""
        self.counts = NonfiniteCounts(**state) if state else NonfiniteCounts()
