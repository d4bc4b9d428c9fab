"""DSD for any training loop in one call: an optimizer whose ``step()`` keeps the sparse constraint.

    opt = dsd_optimizer(model, torch.optim.AdamW(model.parameters()), "D2:1e-3,S2@0.5:1e-3,D2:1e-4")
    for epoch in range(6):
        opt.begin_epoch(epoch)                  # enters Dense, Sparse (prunes), Re-dense by the schedule
        for batch in loader:
            opt.zero_grad(set_to_none=True)
            loss_fn(model, batch).backward()
            opt.mask_gradients()                # optional: only needed before your gradient clipping
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()                          # masks gradients, steps, re-applies the masks

It works with ``torch.amp.GradScaler`` (``scaler.step(opt)``: a skipped step changes nothing), with LR
schedulers attached to the inner optimizer (pass them as ``schedulers`` so the phase LR becomes their
base LR) and saves the masks and the phase position in its ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from dsd_seq.core.dsd import DSD
from dsd_seq.core.phase_driver import PhaseDriver
from dsd_seq.core.schedule import Schedule
from dsd_seq.core.selection import SelectionConfig

_STATE_KEYS = {"optimizer", "dsd", "phases", "steps"}


class MaskedOptimizer:
    """Wraps ``optimizer`` (whose parameters ``dsd`` masks); every other attribute is the inner one's."""

    # GradScaler must unscale the gradients itself and then call step(): the fused-optimizer shortcut
    # would hand its scale to this wrapper, not to the inner optimizer.
    _step_supports_amp_scaling = False

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        dsd: DSD,
        schedule: Schedule | str | None = None,
        unit: str = "epoch",
        schedulers: Sequence = (),
        steps_per_epoch: int | None = None,
    ):
        if dsd.optimizer is not optimizer:
            raise ValueError("MaskedOptimizer: dsd was built for a different optimizer than the one wrapped")
        self.optimizer = optimizer
        self.dsd = dsd
        self.phases = (
            PhaseDriver(dsd, schedule, unit, schedulers, steps_per_epoch) if schedule is not None else None
        )
        self.steps = 0  # optimizer steps taken (a step the GradScaler skipped is not one)

    # the inner optimizer's view, for GradScaler, clipping code and LR schedulers --------------------------
    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    @property
    def defaults(self) -> dict:
        return self.optimizer.defaults

    def __getattr__(self, name: str):
        if name in ("optimizer", "dsd", "phases"):  # not set yet: __init__ failed or unpickling
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __repr__(self) -> str:
        phase = self.phases.label if self.phases is not None else "no schedule"
        return f"MaskedOptimizer({type(self.optimizer).__name__}, phase={phase}, sparse={self.dsd.is_sparse})"

    # phases --------------------------------------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> None:
        """Call at the start of every epoch (0-based) when the schedule counts epochs."""
        if self.phases is None or self.phases.unit != "epoch":
            raise RuntimeError(
                "MaskedOptimizer.begin_epoch: this optimizer was built without a schedule counted in epochs "
                f"(schedule={None if self.phases is None else self.phases.schedule.compact()!r}, "
                f"unit={None if self.phases is None else self.phases.unit!r})"
            )
        self.phases.advance(epoch)

    # the loop's calls ------------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """The inner optimizer's; also forgets a dense gradient RigL kept in a step that was never taken
        (a GradScaler skipped it), so the next redraw grows by the next step's gradient."""
        self.optimizer.zero_grad(set_to_none=set_to_none)
        self.dsd.discard_dense_gradients()

    def mask_gradients(self) -> None:
        """Zero the pruned weights' gradients now, e.g. before clipping so they do not count in the norm."""
        self.dsd.mask_gradients()

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """Run ``closure`` (if any), mask the gradients, step the inner optimizer, re-apply the masks."""
        if self.phases is not None:
            if self.phases.unit == "step":
                self.phases.advance(self.steps)
            elif self.phases.phase_index is None:
                raise RuntimeError(
                    "MaskedOptimizer.step: no phase entered yet; call begin_epoch(epoch) at the start of "
                    "every epoch (or build it with unit='step')"
                )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.dsd.mask_gradients()
        self.optimizer.step()
        self.dsd.apply_masks()
        self.dsd.end_step()
        self.steps += 1
        return loss

    def add_param_group(self, group: dict) -> None:
        self.optimizer.add_param_group(group)

    # state ------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "dsd": self.dsd.state_dict(),
            "phases": self.phases.state_dict() if self.phases is not None else None,
            "steps": self.steps,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore the inner optimizer, the masks and the phase position (load the model's weights too)."""
        if set(state) != _STATE_KEYS:
            hint = (
                " (this looks like a plain optimizer's state_dict; load it into the inner optimizer "
                "or save MaskedOptimizer.state_dict() instead)"
                if {"state", "param_groups"} <= set(state)
                else ""
            )
            raise ValueError(
                f"MaskedOptimizer.load_state_dict: expected keys {sorted(_STATE_KEYS)}, got {sorted(state)}{hint}"
            )
        if (state["phases"] is None) != (self.phases is None):
            raise ValueError(
                "MaskedOptimizer.load_state_dict: the checkpoint was saved "
                f"{'without' if state['phases'] is None else 'with'} a schedule and this optimizer has "
                f"{'none' if self.phases is None else 'one'}; build it the way the run was started"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.dsd.load_state_dict(state["dsd"])
        if self.phases is not None:
            self.phases.load_state_dict(state["phases"])
        self.steps = int(state["steps"])


def dsd_optimizer(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule | str | None = None,
    *,
    unit: str = "epoch",
    schedulers: Sequence = (),
    steps_per_epoch: int | None = None,
    selection: SelectionConfig | None = None,
    scope: str = "layer",
    overrides: Mapping[str, float] | None = None,
) -> MaskedOptimizer:
    """Wrap ``optimizer`` so that ``step()`` keeps DSD's masks on ``model``'s FC and recurrent matrices.

    With ``schedule`` the phases are entered by ``begin_epoch(epoch)`` (``unit="epoch"``) or by the step
    count (``unit="step"``: each phase's ``epochs`` then counts optimizer steps). Without one, drive the
    phases yourself through ``opt.dsd.enter(phase)``. A gradual or RigL/SET phase counted in epochs needs
    ``steps_per_epoch``."""
    dsd = DSD(model, optimizer, selection=selection, scope=scope, overrides=overrides)
    return MaskedOptimizer(optimizer, dsd, schedule, unit, schedulers, steps_per_epoch)
