"""Scoring during a run: which splits, on which rank, and a converging phase's plateau.

At each epoch end but a phase's last, the first of ``train.eval_splits`` is scored, and a phase that
ends at convergence also scores its monitored split, whose value updates the phase's plateau rule
(:mod:`dsd_seq.core.convergence`, state kept in the run's :class:`Position`). A phase end scores every
split. The splits a phase selects its kept epoch on (:mod:`dsd_seq.training.dev_selection`) are scored
after every epoch too. Rank 0 alone evaluates (the weights are the same on every rank) and the others receive its
result. The splits that the config and the schedule name are checked against the task's when the
trainer is built, so a typo stops the run before its first step, not after an epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dsd_seq.core.convergence import Plateau
from dsd_seq.core.schedule import Schedule
from dsd_seq.training import distributed
from dsd_seq.training.dev_selection import DEFAULT_SELECT_ON, Monitor, phase_monitor
from dsd_seq.training.metrics_log import MetricsLog
from dsd_seq.training.position import Position
from dsd_seq.training.results import flat_metrics
from dsd_seq.training.task import Task
from dsd_seq.training.training_error import TrainingError


class Evaluation:
    """Scores ``model`` through ``task.evaluate`` on ``eval_splits`` and the schedule's monitored splits."""

    def __init__(
        self,
        task: Task,
        model: nn.Module,
        device: torch.device,
        eval_splits: Sequence[str],
        schedule: Schedule,
        is_main: bool,
        select_on: str = DEFAULT_SELECT_ON,
    ):
        self.task, self.model, self.device, self.is_main = task, model, device, is_main
        self.select_on = select_on
        self.eval_splits, self.schedule = list(eval_splits), schedule
        missing = [s for s in self.eval_splits if s not in task.splits]
        if missing:
            raise TrainingError(
                f"train.eval_splits names {missing}, but the task has only {list(task.splits)}"
            )
        select_split = select_on.partition("_")[0]
        if select_on != DEFAULT_SELECT_ON and select_split not in task.splits:
            raise TrainingError(
                f"train.select_on={select_on!r} names the split {select_split!r}, but the task has only "
                f"{list(task.splits)}"
            )
        for i, phase in enumerate(schedule):
            if phase.until is not None and phase.until.split not in task.splits:
                raise TrainingError(
                    f"schedule phase {i + 1} ({phase.compact()}) ends when {phase.until.monitor} stops "
                    f"improving, but the task has no split {phase.until.split!r} (it has {list(task.splits)})"
                )

    def scores(self, splits: list[str]) -> dict[str, dict[str, float]]:
        """Scores on rank 0 (the weights are the same on every rank); the others receive its result."""
        metrics = None
        if self.is_main:
            self.model.eval()
            with torch.no_grad():
                metrics = {split: self.task.evaluate(split, self.device) for split in splits}
        return distributed.broadcast_object(metrics)

    def monitor(self, phase: int) -> Monitor | None:
        """What phase ``phase`` (counted from 0) selects its kept epoch on (None: the task cannot)."""
        return phase_monitor(
            self.schedule[phase], self.select_on, list(self.task.splits), self.task.metric,
            self.task.higher_is_better,
        )  # fmt: skip

    def end_epoch(self, log: MetricsLog, pos: Position) -> tuple[bool, dict[str, dict[str, float]]]:
        """Score the first eval split (and the phase's monitored ones) and log them; returns whether the
        phase has converged, keeping the plateau rule's state in ``pos``, and the scores."""
        until = self.schedule[pos.phase].until
        monitor = self.monitor(pos.phase)
        splits = [
            *self.eval_splits[:1],
            *([until.split] if until else []),
            *([monitor.split] if monitor else []),
        ]
        metrics = self.scores(list(dict.fromkeys(splits)))
        if until is None:
            self.log_epoch(log, pos, metrics)
            return False, metrics
        value = metrics[until.split].get(until.name)
        if value is None:
            raise TrainingError(
                f"schedule phase {pos.phase + 1} ends when {until.monitor} stops improving, but the task's "
                f"evaluate({until.split!r}) returns only {sorted(metrics[until.split])}; monitor one of those "
                f"(until.monitor / monitor=... in the compact schedule), e.g. {until.split}_{self.task.metric}"
            )
        plateau = Plateau(pos.plateau_best, pos.plateau_since_best)
        plateau.update(
            float(value),
            until.min_delta,
            until.higher_is_better(self.task.metric, self.task.higher_is_better),
        )
        pos.plateau_best, pos.plateau_since_best = plateau.best, plateau.since_best
        converged = plateau.converged(pos.epoch, until)
        log.log(
            "epoch", pos.global_step, phase=pos.phase, epoch=pos.epoch, **flat_metrics(metrics),
            monitor=until.monitor, best=plateau.best, since_best=plateau.since_best, converged=converged,
        )  # fmt: skip
        return converged, metrics

    def end_phase(self, log: MetricsLog, pos: Position) -> dict[str, dict[str, float]]:
        """Score every eval split (and the monitored one); the first is logged as the phase's last epoch."""
        monitor = self.monitor(pos.phase)
        extra = [monitor.split] if monitor is not None and monitor.split not in self.eval_splits else []
        metrics = self.scores([*self.eval_splits, *extra])
        first = self.eval_splits[0]
        self.log_epoch(log, pos, {first: metrics[first]})
        return metrics

    @staticmethod
    def log_epoch(log: MetricsLog, pos: Position, metrics: dict[str, dict[str, float]]) -> None:
        log.log("epoch", pos.global_step, phase=pos.phase, epoch=pos.epoch, **flat_metrics(metrics))
