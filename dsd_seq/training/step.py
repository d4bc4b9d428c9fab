"""One optimizer step under the DSD constraint, and what it did.

Order (see :mod:`dsd_seq.training.precision`): forward under autocast -> (scaled) backward -> mask the
gradients -> unscale -> clip -> step -> re-apply the masks. A step whose loss or gradients are not finite
changes nothing: no update, and buffers the forward pass moved (batch-norm statistics) are put back. A step
that leaves a weight or the optimizer state non-finite (an update that overflows) is undone from the copy
taken before it (:mod:`dsd_seq.training.pre_step_copy`) and skipped the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dsd_seq.core.dsd import DSD
from dsd_seq.training import distributed
from dsd_seq.training.pre_step_copy import PreStepCopy
from dsd_seq.training.precision import Precision
from dsd_seq.training.task import Task


@dataclass
class StepResult:
    """What one training step did. ``loss`` is None when the step was skipped without an update."""

    loss: float | None
    overflow: bool = False  # fp16: the gradient scaler skipped the step (inf/NaN at the current scale)
    stop: bool = False  # under torchrun: some rank was asked to stop (SIGINT/SIGTERM), so all stop here


class TrainStep:
    """Callable on a batch: one step of ``model`` on ``task``'s loss.

    ``runner`` is the module the loss runs through: the model itself, or under torchrun its
    DistributedDataParallel wrapper, whose backward pass averages the gradients over the ranks, so every
    later decision is the same on every rank. Only the loss differs per rank, so its finiteness (and any
    stop request, read from ``stop_requested``) is agreed first."""

    def __init__(
        self,
        task: Task,
        model: nn.Module,
        runner: nn.Module,
        optimizer: torch.optim.Optimizer,
        dsd: DSD,
        precision: Precision,
        grad_clip: float,
        device: torch.device,
        stop_requested: Callable[[], bool] = lambda: False,
    ):
        self.task, self.model, self.runner = task, model, runner
        self.optimizer, self.dsd, self.precision = optimizer, dsd, precision
        self.clip = grad_clip or math.inf
        self.device = device
        self.stop_requested = stop_requested
        self.world_size = distributed.world_size()
        self.pre_step = PreStepCopy(model, optimizer)

    def __call__(self, batch: Any) -> StepResult:
        self.optimizer.zero_grad(set_to_none=True)
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        with self.precision.autocast():
            loss = self.task.loss(batch, self.device, self.runner)
        finite, stop = bool(torch.isfinite(loss)), False
        loss_value = float(loss.detach()) if finite else None
        if self.world_size > 1:
            local = torch.tensor([loss_value or 0.0, float(not finite), float(self.stop_requested())])
            total = distributed.all_reduce_sum(local)
            finite, stop = bool(total[1] == 0), bool(total[2] > 0)
            loss_value = float(total[0]) / self.world_size if finite else None
        if not finite:
            _restore(buffers)
            self.dsd.skip_step()  # the phase's steps are its batches, taken or not
            return StepResult(None, stop=stop)
        self.precision.backward(loss)
        self.dsd.mask_gradients()
        self.precision.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        if self.precision.scaler is None and not torch.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            _restore(buffers)
            self.dsd.skip_step()  # the phase's steps are its batches, taken or not
            return StepResult(None, stop=stop)
        self.pre_step.take()
        if not self.precision.step(self.optimizer):  # fp16: the scaler found inf/NaN and skipped the step
            self.optimizer.zero_grad(set_to_none=True)
            _restore(buffers)
            self.dsd.skip_step()  # the phase's steps are its batches, taken or not
            return StepResult(None, overflow=True, stop=stop)
        self.dsd.apply_masks()
        # the weights are the same on every rank (DDP), so every rank takes the same branch
        if not self.pre_step.finite():
            self.pre_step.restore()
            self.optimizer.zero_grad(set_to_none=True)
            _restore(buffers)
            self.dsd.skip_step()  # the phase's steps are its batches, taken or not
            return StepResult(None, stop=stop)
        self.dsd.end_step()  # a gradual or RigL/SET phase may change its masks after this step
        return StepResult(loss_value, stop=stop)


def _restore(buffers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for buffer, saved in buffers:
            buffer.copy_(saved)
