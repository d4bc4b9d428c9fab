"""The DSD method, torch only: which weights are prunable (``selection``), how important each is
(``criteria``, chosen with ``masking_config``), masks (``masks``), the phase schedule (``schedule``) and
the controller that enters phases and enforces masks in any loop (``dsd``)."""

from dsd_seq.core.criteria import CRITERIA, Criterion
from dsd_seq.core.dsd import DSD
from dsd_seq.core.masking_config import MaskingConfig, MaskingError
from dsd_seq.core.masks import MaskSet, measured_sparsity
from dsd_seq.core.schedule import Phase, Schedule
from dsd_seq.core.selection import SelectionConfig, select_prunable

__all__ = [
    "CRITERIA",
    "DSD",
    "Criterion",
    "MaskSet",
    "MaskingConfig",
    "MaskingError",
    "Phase",
    "Schedule",
    "SelectionConfig",
    "measured_sparsity",
    "select_prunable",
]
