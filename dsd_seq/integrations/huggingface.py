"""DSD as a Hugging Face ``TrainerCallback`` (``pip install dsd-seq[huggingface]``).

    trainer = Trainer(model, args, train_dataset=..., callbacks=[DSDTrainerCallback("D2:1e-3,S2@0.5:1e-3,D2:1e-4")])

Hook order (transformers 5.x): backward, then the Trainer clips the gradients, then
``on_pre_optimizer_step``, ``optimizer.step()``, ``on_optimizer_step``, ``lr_scheduler.step()``. No
callback runs between backward and clipping, so the gradients are masked as backward accumulates them
(a post-accumulate-grad hook per pruned tensor) and again by a step pre-hook; the masks are re-applied by a
step post-hook. The Trainer's LR scheduler is rebased on each phase's LR (use
``lr_scheduler_type="constant"`` for the paper's constant phase LRs; a decaying type scales them).

Phases follow ``state.epoch`` (``unit="epoch"``) or ``state.global_step`` (``unit="step"``). The masks
and phase position are saved as ``dsd_state.pt`` in every ``checkpoint-N`` folder the Trainer writes and
read back when training resumes at step N (``resume_from=`` names another folder).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
from transformers import TrainerCallback

from dsd_seq.core.dsd import DSD
from dsd_seq.core.mask_hooks import MaskHooks
from dsd_seq.core.phase_driver import PhaseDriver
from dsd_seq.core.schedule import Schedule
from dsd_seq.core.selection import SelectionConfig

STATE_FILE = "dsd_state.pt"


class DSDTrainerCallback(TrainerCallback):
    """Dense -> Sparse -> Re-dense by ``schedule`` on the model's FC and recurrent matrices."""

    def __init__(
        self,
        schedule: Schedule | str,
        unit: str = "epoch",
        selection: SelectionConfig | None = None,
        scope: str = "layer",
        overrides: Mapping[str, float] | None = None,
        resume_from: str | os.PathLike | None = None,
    ):
        self.schedule = Schedule.parse(schedule) if isinstance(schedule, str) else schedule
        self.unit = unit
        self.selection, self.scope, self.overrides = selection, scope, overrides
        self.resume_from = resume_from
        self.dsd: DSD | None = None
        self.phases: PhaseDriver | None = None
        self._hooks: MaskHooks | None = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        inner = getattr(optimizer, "optimizer", optimizer)  # Accelerate wraps the torch optimizer
        self.dsd = DSD(model, inner, self.selection, self.scope, self.overrides)
        self.phases = PhaseDriver(self.dsd, self.schedule, self.unit, [lr_scheduler] if lr_scheduler else [])
        if state.global_step > 0:
            self._restore(args, state)
        self._hooks = MaskHooks(self.dsd, inner, during_backward=True)

    def _restore(self, args, state) -> None:
        folder = self.resume_from or os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        path = os.path.join(folder, STATE_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"DSDTrainerCallback: training resumes at step {state.global_step} but {path} does not exist; "
                "pass resume_from='<the checkpoint folder you resume from>' (it holds dsd_state.pt)"
            )
        saved = torch.load(path, map_location="cpu", weights_only=True)
        self.dsd.load_state_dict(saved["dsd"])
        self.phases.load_state_dict(saved["phases"])

    def _position(self, state) -> int:
        if self.unit == "step":
            return state.global_step
        return math.floor((state.epoch or 0.0) + 1e-6)

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.unit == "epoch":
            self.phases.advance(self._position(state))

    def on_step_begin(self, args, state, control, **kwargs):
        if self.unit == "step":
            self.phases.advance(self._position(state))

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.dsd.apply_masks()  # the post-hook did it already unless the optimizer was replaced

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or self.dsd is None:
            return
        extra = {"dsd/phase": self.phases.phase_index, "dsd/sparsity": round(self.dsd.sparsity()[1], 6)}
        logs.update(extra)  # for the reporting callbacks after this one
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(extra)  # the Trainer recorded its entry before calling on_log

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if state.is_world_process_zero and os.path.isdir(folder):
            torch.save(
                {"dsd": self.dsd.state_dict(), "phases": self.phases.state_dict()},
                os.path.join(folder, STATE_FILE),
            )

    def on_train_end(self, args, state, control, **kwargs):
        if self._hooks is not None:
            self._hooks.remove()
            self._hooks = None
