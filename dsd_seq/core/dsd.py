"""The public DSD controller: add Dense-Sparse-Dense to any training loop in a few lines.

    dsd = DSD(model, optimizer)
    for phase in Schedule.parse("D10:1e-3,S10@0.5:1e-3,D10:1e-4"):
        dsd.enter(phase)
        for batch in loader:
            optimizer.zero_grad()
            loss_fn(model, batch).backward()
            dsd.step()          # masks gradients, optimizer.step(), re-applies the masks

With gradient clipping or a GradScaler, call ``dsd.mask_gradients()`` before clipping and
``dsd.apply_masks()`` after the optimizer step instead of ``dsd.step()``. Which weights are prunable is
``selection`` (a :class:`SelectionConfig`); the masks keep the weights that ``criterion`` (a name in
``dsd_seq.core.criteria.CRITERIA``, default |w|) scores highest, per layer or with ``scope="global"``
across layers, at the phase's sparsity or an ``overrides`` one (parameter-name glob -> sparsity).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from dsd_seq.core.masking_config import MaskingConfig
from dsd_seq.core.masks import LayerSparsity, MaskSet, measured_sparsity
from dsd_seq.core.schedule import SPARSE, Phase
from dsd_seq.core.selection import SelectionConfig, select_prunable

#: Steps between re-parkings of the pruned second moments: a parked 1.0 decays by Adam's beta2 (RMSprop's
#: alpha) each step and stays a normal float over 100 steps for any of them >= 0.5 (0.5**100 ~ 8e-31).
PARK_EVERY = 100


class DSD:
    """Owns the masks of one model and keeps its optimizer consistent with them."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        selection: SelectionConfig | None = None,
        scope: str = "layer",
        overrides: Mapping[str, float] | None = None,
        criterion: str = "magnitude",
    ):
        self.model = model
        self.optimizer = optimizer
        self.masking = MaskingConfig(criterion=criterion, scope=scope, overrides=dict(overrides or {}))
        self.params = select_prunable(model, selection)
        if not self.params:
            raise ValueError("DSD: the model has no prunable parameter (no nn.Linear or recurrent matrix)")
        self.masking.validate(self.params)  # now, not when the first sparse phase starts days later
        self.masks: MaskSet | None = None
        self._steps_since_park = 0

    @property
    def is_sparse(self) -> bool:
        return self.masks is not None

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def enter(self, phase: Phase) -> None:
        """Start ``phase``: set its learning rate, then prune (sparse) or lift the masks (re-dense)."""
        self.set_lr(phase.lr)
        if phase.kind == SPARSE:
            self.prune(phase.sparsity)
        elif self.is_sparse:
            self.redense()

    def prune(self, sparsity: float) -> MaskSet:
        """Compute masks from the current weights' scores (``masking.criterion``), zero the pruned weights
        and their optimizer state."""
        if self.masks is not None:  # sparse to sparse: unpark the old masks' second moments first, so that
            self.masks.mask_optimizer_state_(self.optimizer)  # weights revived by a lower sparsity start at 0
        self.masks = MaskSet.from_criterion(self.params, sparsity, self.masking)
        self.masks.apply_()
        self.masks.mask_optimizer_state_(self.optimizer)
        self.masks.park_second_moments_(self.optimizer)
        return self.masks

    def redense(self) -> None:
        """Lift the masks. Pruned weights restart at exactly zero (they are zero now) and their optimizer
        state is reset, so they learn from scratch at the re-dense learning rate (Sec. 2).

        Adam's step counter is per tensor, so a revived weight gets no bias correction: its first update
        is up to (1-beta1)/sqrt(1-beta2) = 3.2 x lr in size (less early in a run), shrinking as its
        moments fill up. The trainer's ``train.redense_state: reset_tensors`` drops these tensors' whole
        state instead (:mod:`dsd_seq.core.optimizer_state`), so their bias correction restarts."""
        if self.masks is None:
            return
        self.masks.apply_()
        self.masks.mask_optimizer_state_(self.optimizer)
        self.masks = None

    def mask_gradients(self) -> None:
        if self.masks is not None:
            self.masks.mask_grads_()

    def apply_masks(self) -> None:
        """Re-zero the pruned weights after an optimizer step, and park the second moments there on the
        CPU (``MaskSet.park_second_moments_``, which changes no result): new state tensors at once, all
        of them again every ``PARK_EVERY`` steps, before a parked value could decay towards zero."""
        if self.masks is not None:
            self.masks.apply_()
            self._steps_since_park += 1
            again = self._steps_since_park >= PARK_EVERY
            if again:
                self._steps_since_park = 0
            self.masks.park_second_moments_(self.optimizer, again=again)

    def step(self) -> None:
        """``optimizer.step()`` with the sparse constraint kept: pruned weights are exactly 0 after it."""
        self.mask_gradients()
        self.optimizer.step()
        self.apply_masks()

    def sparsity(self) -> tuple[list[LayerSparsity], float]:
        """Per-layer and total sparsity measured on the prunable weights (exact zeros)."""
        return measured_sparsity(self.params)

    def state_dict(self) -> dict:
        return {"masks": self.masks.state_dict() if self.masks is not None else None}

    def load_state_dict(self, state: Mapping) -> None:
        masks = state.get("masks")
        self.masks = MaskSet(self.params, masks) if masks is not None else None
