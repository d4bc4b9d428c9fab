"""dsd-seq: Dense-Sparse-Dense training (Han et al., ICLR 2017) for recurrent sequence models.

The package is three layers, each importing only the ones before it:

- :mod:`dsd_seq.core`: the DSD method itself (schedule, selection of prunable weights, masks, pruning
  criteria, the ``DSD`` controller); needs torch alone, so a user's own training loop can use it.
- :mod:`dsd_seq.training`: the run machinery (trainer, checkpoint folder, config, torchrun, precision,
  metrics log, the ``Task`` protocol).
- :mod:`dsd_seq.experiments`: comparisons over seeds, the run store, t-tests, reports, figures, scoring.

:mod:`dsd_seq.cli` (the ``dsd-seq`` command) sits on top; :mod:`dsd_seq.safe_io` (atomic writes and
checked loading) is a leaf every layer, and ``data_prep``, may use. :mod:`dsd_seq.export` packages a
trained model and loads it back (``dsd_seq.load_model(path)``) through the model family's own code.
"""

from dsd_seq.core import DSD, MaskSet, Phase, Schedule, SelectionConfig, measured_sparsity, select_prunable
from dsd_seq.export import load_model

__all__ = [
    "DSD",
    "MaskSet",
    "Phase",
    "Schedule",
    "SelectionConfig",
    "load_model",
    "measured_sparsity",
    "select_prunable",
]
__version__ = "0.1.0"
