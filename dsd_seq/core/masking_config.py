"""How masks are computed: the ``masking`` section of a run config, and its one validation.

The config loader calls :meth:`MaskingConfig.validate` without the model (name, range and scope checks);
the DSD controller calls it again with the prunable parameter names, when the override patterns can be
matched. Both report with the same key names, so a message reads alike from ``dsd-seq train`` and from a
user's own loop.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field

from dsd_seq.core.criteria import CRITERIA

#: ``layer``: every layer keeps its own top k (the paper, Sec. 2); ``global``: one threshold for all.
SCOPES: tuple[str, ...] = ("layer", "global")


class MaskingError(ValueError):
    """A masking setting that cannot be used; the message names the ``masking.*`` key."""


@dataclass
class MaskingConfig:
    """The ``masking`` section: which criterion scores the weights, over which scope, with which
    per-layer sparsities."""

    criterion: str = "magnitude"  # a name in dsd_seq.core.criteria.CRITERIA
    scope: str = "layer"  # "layer" (the paper) or "global"
    overrides: dict[str, float] = field(default_factory=dict)  # parameter-name glob -> sparsity

    def validate(self, prunable: Iterable[str] | None = None) -> None:
        """Raise :class:`MaskingError` for an unknown criterion or scope, an override sparsity outside
        [0, 1), or (given the ``prunable`` parameter names) an override pattern that matches none."""
        if self.criterion not in CRITERIA:
            raise MaskingError(
                f"masking.criterion={self.criterion!r} is not a registered pruning criterion; "
                f"registered: {', '.join(sorted(CRITERIA))}"
            )
        if self.scope not in SCOPES:
            raise MaskingError(f"masking.scope={self.scope!r}; accepted: {', '.join(SCOPES)}")
        for pattern, value in self.overrides.items():
            if not 0.0 <= float(value) < 1.0:
                raise MaskingError(f"masking.overrides[{pattern!r}]={value}; sparsity must be in [0, 1)")
        if prunable is None:
            return
        names = list(prunable)
        for pattern in self.overrides:
            if not fnmatch.filter(names, pattern):
                raise MaskingError(
                    f"masking.overrides: pattern {pattern!r} matches no prunable parameter; prunable: {names}"
                )

    def layer_sparsity(self, name: str, default: float) -> float:
        """The sparsity of parameter ``name``: the first override whose glob matches, else ``default``."""
        for pattern, value in self.overrides.items():
            if fnmatch.fnmatch(name, pattern):
                return float(value)
        return default

    def is_overridden(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.overrides)
