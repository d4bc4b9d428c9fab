"""The error that stops a run the trainer cannot go on with (repeated NaN losses, a split or monitor the
task does not have); the last good checkpoint is kept on disk."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """The run cannot go on (e.g. repeated NaN losses); the last good checkpoint is kept."""
