"""The public DSD controller: add Dense-Sparse-Dense to any training loop in a few lines.

    dsd = DSD(model, optimizer)
    for phase in Schedule.parse("D10:1e-3,S10@0.5:1e-3,D10:1e-4"):
        dsd.enter(phase)
        for batch in loader:
            optimizer.zero_grad()
            loss_fn(model, batch).backward()
            dsd.step()          # masks gradients, optimizer.step(), re-applies the masks

With gradient clipping or a GradScaler, do the step by hand instead of ``dsd.step()``:

    dsd.mask_gradients()    # before clipping: pruned weights do not count in the norm
    clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()        # or scaler.step(optimizer)
    dsd.apply_masks()       # pruned weights are exactly 0 again
    dsd.end_step()          # a gradual or RigL/SET phase counts the step (and may change its masks)

and call ``dsd.skip_step()`` instead of ``dsd.end_step()`` for a step that was skipped (a GradScaler
overflow, a NaN loss). Which weights are prunable is
``selection`` (a :class:`SelectionConfig`); the masks keep the weights that ``criterion`` (a name in
``dsd_seq.core.criteria.CRITERIA``, default |w|) scores highest, per layer or with ``scope="global"``
across layers, at the phase's sparsity or an ``overrides`` one (parameter-name glob -> sparsity).

A gradual or RigL/SET phase (``Phase.ramp``, ``Phase.redraw``) changes its masks while it trains: give
the controller its length in optimizer steps with ``dsd.plan_steps(n)`` once it is entered, and end
each successful step with ``dsd.end_step()`` (``dsd.step()`` does); the masks change there, after the
weights were updated and masked, so a grown weight is exactly 0 after it with zero optimizer state. A
phase whose steps were never counted warns when it ends (``dsd.finish_phase()``, which the next
``enter()`` calls), as does a phase too short for its ``every`` when it is planned.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Mapping

import torch
from torch import nn

from dsd_seq.core.mask_updates import MaskUpdates
from dsd_seq.core.masking_config import MaskingConfig
from dsd_seq.core.masks import LayerSparsity, MaskSet, measured_sparsity
from dsd_seq.core.ramp import Ramp
from dsd_seq.core.redraw import redraw_mask
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
        seed: int = 0,
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
        self.updates: MaskUpdates | None = None  # a gradual or RigL/SET phase's in-phase schedule
        self.generator = torch.Generator().manual_seed(seed)  # SET's random growth (saved: exact resumes)
        self._dense_grads: dict[str, torch.Tensor] | None = None  # RigL: |gradient| before masking
        self._kept_from: dict[str, weakref.ref | None] = {}  # the gradient tensor each one was kept from
        self.last_redraw: dict[str, int] = {}  # weights each layer dropped (and grew) at the last redraw
        self._mask_update: dict | None = None  # the last in-phase mask change, until take_mask_update()
        self.gradients_masked_in_backward = False  # set by MaskHooks(during_backward=True) (informational)

    @property
    def is_sparse(self) -> bool:
        return self.masks is not None

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def enter(self, phase: Phase) -> None:
        """Start ``phase``: set its learning rate, then prune (sparse) or lift the masks (re-dense). A
        gradual phase prunes to its starting sparsity, a RigL/SET phase to its sparsity. A gradual or
        RigL/SET phase still current is finished first (:meth:`finish_phase`)."""
        self.finish_phase()
        self.set_lr(phase.lr)
        self.updates = None
        if phase.kind == SPARSE:
            rule = phase.ramp if phase.ramp is not None else phase.redraw
            if rule is not None:
                self.updates = MaskUpdates(rule, phase.sparsity)
            self.prune(phase.ramp.start if phase.ramp is not None else phase.sparsity)
        elif self.is_sparse:
            self.redense()

    def plan_steps(self, steps: int) -> str | None:
        """The current phase's length in optimizer steps, which a gradual or RigL/SET phase counts in (no
        effect for other phases; the first call of a phase holds). When the phase is too short for its
        ``every`` (a ramp of one update, a RigL/SET phase that never redraws) the first call warns
        (``warnings.warn``) and returns the warning."""
        if self.updates is None or not self.updates.plan(steps):
            return None
        message = self.updates.short_phase_warning()
        if message is not None:
            warnings.warn(message, stacklevel=2)
        return message

    def finish_phase(self) -> str | None:
        """End a gradual or RigL/SET phase (the trainer and ``PhaseDriver`` call it when the phase ends).
        A gradual phase that ended before its ramp did (its steps were planned from an epoch with more
        batches than the others had) is pruned to its final sparsity now. Returns a warning (also issued
        with ``warnings.warn``) when that happened, or when no step of the phase was counted (a loop that
        never called ``end_step()``); None otherwise."""
        updates = self.updates
        if updates is None or updates.finished:
            return None
        updates.finished = True
        what = "gradual" if isinstance(updates.rule, Ramp) else updates.rule.method  # type: ignore[union-attr]
        message = None
        if updates.step == 0:
            message = (
                f"the {what} phase (sparsity {updates.sparsity:g}) ended with no optimizer step counted, so "
                "its masks never changed during it: call dsd.end_step() after every optimizer step "
                "(dsd.step() and MaskedOptimizer.step() do) and dsd.skip_step() for a skipped one"
            )
        if isinstance(updates.rule, Ramp):
            last = updates.rule.last_step(updates.steps) if updates.steps is not None else None
            if last is None or updates.step < last:
                reached = updates.target() if updates.steps is not None else updates.rule.start
                message = (message + "; " if message else "") + (
                    f"the gradual phase ended after {updates.step} of its ramp's "
                    f"{last if last is not None else 'unplanned'} planned step(s), at "
                    f"sparsity {reached:g}: pruned to its final sparsity {updates.sparsity:g} now"
                )
                self.prune(updates.sparsity)
        if message is not None:
            warnings.warn(message, stacklevel=2)
        return message

    def prune(self, sparsity: float) -> MaskSet:
        """Compute masks from the current weights' scores (``masking.criterion``), zero the pruned weights
        and their optimizer state."""
        if self.masks is not None:  # sparse to sparse: unpark the old masks' second moments first, so that
            self.masks.mask_optimizer_state_(self.optimizer)  # weights revived by a lower sparsity start at 0
        self.masks = MaskSet.from_criterion(self.params, sparsity, self._masking_at(sparsity))
        self.masks.apply_()
        self.masks.mask_optimizer_state_(self.optimizer)
        self.masks.park_second_moments_(self.optimizer)
        return self.masks

    def _masking_at(self, sparsity: float) -> MaskingConfig:
        """The masking settings for pruning to ``sparsity``. In a gradual phase the ``overrides`` rise
        along the ramp with the other layers: an override ``o`` prunes its layers to ``o * s / s_f`` at
        sparsity ``s`` of the phase's final ``s_f``, so that they reach ``o`` when the ramp ends."""
        updates = self.updates
        if not self.masking.overrides or updates is None or not isinstance(updates.rule, Ramp):
            return self.masking
        scale = sparsity / updates.sparsity if updates.sparsity > 0 else 1.0
        scaled = {pattern: value * scale for pattern, value in self.masking.overrides.items()}
        return dataclasses.replace(self.masking, overrides=scaled)

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
        """Zero the pruned weights' gradients. On a step that redraws by the gradient (RigL) the dense
        gradient is kept first, once per step: a second call in the same step (``mask_gradients()``
        before clipping, then ``step()``) or a backward hook that kept it already leaves it as it is."""
        if self.masks is not None:
            if self.updates is not None and self.updates.wants_gradient:
                for name, p in self.params.items():
                    if not self._kept_this_step(name, p.grad):
                        self.keep_dense_gradient(name, p.grad)
            self.masks.mask_grads_()

    def _kept_this_step(self, name: str, grad: torch.Tensor | None) -> bool:
        """Whether ``name``'s dense gradient was kept from this very gradient tensor (a new backward after
        ``zero_grad(set_to_none=True)`` makes a new one, so a step skipped without ``skip_step()`` leaves
        nothing stale behind)."""
        if self._dense_grads is None or name not in self._dense_grads:
            return False
        ref = self._kept_from.get(name)
        return (ref() if ref is not None else None) is grad

    def keep_dense_gradient(self, name: str, grad: torch.Tensor | None) -> None:
        """RigL: keep |gradient| of ``name`` before it is masked, on a step that redraws (a hook that
        masks gradients during backward calls this first; with accumulation the last call's counts)."""
        if self.updates is None or not self.updates.wants_gradient:
            return
        p = self.params[name]
        kept = grad.detach().abs().float() if grad is not None else torch.zeros_like(p, dtype=torch.float)
        self._dense_grads = {**(self._dense_grads or {}), name: kept}
        self._kept_from[name] = weakref.ref(grad) if grad is not None else None

    def discard_dense_gradients(self) -> None:
        """Forget the dense gradient kept for RigL's next redraw: call it when a step is abandoned without
        ``end_step()``/``skip_step()`` (``MaskedOptimizer.zero_grad`` does), so that it is never reused."""
        self._dense_grads, self._kept_from = None, {}

    def end_step(self) -> None:
        """Count a completed optimizer step of the phase; after the steps its rule names, raise the
        gradual phase's sparsity (new masks by the criterion) or redraw RigL/SET's masks."""
        self._count_step(taken=True)

    def skip_step(self) -> None:
        """Count a step the loop skipped (a non-finite loss or gradient, an overflow): the phase's steps
        are its batches, so its ramp still ends where it was planned. A gradual update due now happens
        (the weights are as before the step); a redraw due now is left out (no usable gradient)."""
        self._count_step(taken=False)

    def _count_step(self, taken: bool) -> None:
        updates = self.updates
        dense_grads = self._dense_grads
        self.discard_dense_gradients()
        if updates is None:
            return
        updates.step += 1
        if not updates.due(updates.step):
            return
        if isinstance(updates.rule, Ramp):
            self.prune(updates.target())
            self._mask_update = {
                "method": "gradual",
                "phase_step": updates.step,
                "sparsity": updates.target(),
            }
        elif taken:
            fraction = updates.drop_fraction()
            self._redraw(fraction, dense_grads)
            self._mask_update = {
                "method": updates.rule.method,
                "phase_step": updates.step,
                "drop_fraction": fraction,
                "dropped": sum(self.last_redraw.values()),
                "layers": dict(self.last_redraw),
            }

    def take_mask_update(self) -> dict | None:
        """What the last step changed in the masks of a gradual or RigL/SET phase (for the metrics log:
        the ramp's new sparsity, or the weights each layer dropped and grew), once; None when nothing."""
        update, self._mask_update = self._mask_update, None
        return update

    @torch.no_grad()
    def _redraw(self, fraction: float, dense_grads: dict[str, torch.Tensor] | None) -> None:
        """Drop and grow in every layer (:func:`dsd_seq.core.redraw.redraw_mask`). The old masks first zero
        the optimizer state outside them (parked second moments included), so grown weights start from
        zero state; the new masks then zero the dropped weights and their state."""
        assert self.masks is not None and self.updates is not None
        random = self.updates.rule.grow == "random"  # type: ignore[union-attr]
        if not random and dense_grads is None:
            raise RuntimeError(
                "RigL grows by the dense gradient, which mask_gradients() keeps before masking on a redraw "
                "step; call dsd.mask_gradients() (or dsd.step()) before the optimizer step"
            )
        new, self.last_redraw = {}, {}
        for name, p in self.params.items():
            mask = self.masks.masks[name]
            if random:
                scores = torch.rand(p.shape, generator=self.generator).to(p.device)
            else:
                scores = dense_grads[name]  # type: ignore[index]
            new[name], self.last_redraw[name] = redraw_mask(mask, p, scores, fraction)
        self.masks.mask_optimizer_state_(self.optimizer)
        self.masks = MaskSet(self.params, new)
        self.masks.apply_()
        self.masks.mask_optimizer_state_(self.optimizer)
        self.masks.park_second_moments_(self.optimizer)
        self._steps_since_park = 0

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
        self.end_step()

    def sparsity(self) -> tuple[list[LayerSparsity], float]:
        """Per-layer and total sparsity measured on the prunable weights (exact zeros)."""
        return measured_sparsity(self.params)

    def state_dict(self) -> dict:
        state: dict = {
            "masks": self.masks.state_dict() if self.masks is not None else None,
            "generator": self.generator.get_state(),  # SET's random growth continues where it was
        }
        if self.updates is not None:  # a gradual or RigL/SET phase: where it is in its steps
            state["updates"] = self.updates.state_dict()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        masks = state.get("masks")
        self.masks = MaskSet(self.params, masks) if masks is not None else None
        updates = state.get("updates")
        self.updates = MaskUpdates.from_state(updates) if updates is not None else None
        if state.get("generator") is not None:
            self.generator.set_state(state["generator"])
