"""dsd-seq: Dense-Sparse-Dense training (Han et al., ICLR 2017) for recurrent sequence models."""

from dsd_seq.dsd import DSD
from dsd_seq.masks import MaskSet, measured_sparsity
from dsd_seq.schedule import Phase, Schedule
from dsd_seq.selection import SelectionConfig, select_prunable


def __getattr__(name: str):
    """``Trainer`` loads on first use: DSD in a user's own loop (and the benchmarks) needs only torch,
    not the trainer's tqdm, PyYAML and NumPy."""
    if name == "Trainer":
        from dsd_seq.trainer import Trainer

        return Trainer
    raise AttributeError(f"module 'dsd_seq' has no attribute {name!r}")


__all__ = [
    "DSD",
    "MaskSet",
    "Phase",
    "Schedule",
    "SelectionConfig",
    "Trainer",
    "measured_sparsity",
    "select_prunable",
]
__version__ = "0.1.0"
