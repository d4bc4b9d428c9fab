"""The DSD training loop: phase -> epoch -> step.

Every position in the run (phase, epoch, step) is checkpointed with the RNG states, and an epoch's batch
order is drawn from a generator seeded by (seed, phase, epoch), so a resumed run continues exactly where
it stopped. A NaN/inf loss or gradient skips the step (:mod:`dsd_seq.training.step`); too many in a row,
or too large a share of a phase (:mod:`dsd_seq.training.nonfinite_guard`), stop the run with the last good
checkpoint (:mod:`dsd_seq.training.checkpoint_dir`) on disk.

Under ``torchrun`` (:mod:`dsd_seq.training.distributed`) every rank runs this loop on its share of each
epoch's batches. Rank 0 alone writes checkpoints, metrics and progress bars and runs the evaluation (the
others wait for its result); every decision that changes the weights (skip a NaN step, stop on a signal)
is agreed by all ranks in the same step, and masks and weights are verified identical across ranks when
pruning, after resuming and at every phase end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from dsd_seq.core import optimizer_state
from dsd_seq.core.convergence import Plateau
from dsd_seq.core.dsd import DSD
from dsd_seq.core.schedule import SPARSE, Schedule
from dsd_seq.safe_io import CheckpointError, kill_point, load_checkpoint_dict
from dsd_seq.training import distributed
from dsd_seq.training.checkpoint import (
    CHECKPOINT_FORMAT,
    RESUME_KEYS,
    check_resumable,
    restore_rng,
    rng_state,
)
from dsd_seq.training.checkpoint_dir import CheckpointDir
from dsd_seq.training.config import RunConfig
from dsd_seq.training.metrics_log import MetricsLog
from dsd_seq.training.nonfinite_guard import NonfiniteGuard
from dsd_seq.training.optimizer import build_optimizer
from dsd_seq.training.phase_completion import complete_phase_end
from dsd_seq.training.precision import Precision
from dsd_seq.training.results import flat_metrics, phase_row, write_results
from dsd_seq.training.step import StepResult, TrainStep
from dsd_seq.training.stop_request import StopRequest
from dsd_seq.training.task import Task


class TrainingError(RuntimeError):
    """The run cannot go on (e.g. repeated NaN losses); the last good checkpoint is kept."""


@dataclass
class Position:
    """Where the run is: the next step to take. ``entered`` says whether the phase's masks are set."""

    phase: int = 0
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    entered: bool = False
    phase_seconds: float = 0.0  # training time spent in this phase, across resumptions
    # a phase that ends at convergence: its rule's state (dsd_seq.core.convergence.Plateau)
    plateau_best: float | None = None
    plateau_since_best: int = 0


class Trainer:
    """Runs a :class:`Schedule` on a :class:`Task`, writing checkpoints, metrics and per-phase results."""

    def __init__(
        self, task: Task, schedule: Schedule, config: RunConfig, exp_dir: str | Path, run_label: str = "DSD"
    ):
        self.task, self.schedule, self.config = task, schedule, config
        self.run_label = run_label  # how results tables name this run: "DSD", or "LLR" for the baseline
        self.exp_dir = Path(exp_dir)
        self.checkpoint_dir = CheckpointDir(self.exp_dir / "checkpoints", config.train.keep_checkpoints)
        self.device = distributed.init_from_env(distributed.resolve_device(config.train.device))
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.is_main = self.rank == 0
        self.model = task.model.to(self.device)
        runner = distributed.wrap_for_training(self.model, self.device)  # DDP under torchrun
        if self.world_size > 1:  # DDP copied rank 0's weights; each rank draws its own dropout noise
            torch.manual_seed(distributed.rank_seed(config.train.seed, self.rank))
        self.precision = Precision(config.train.precision, self.device)
        self.optimizer = build_optimizer(self.model, config)
        self.dsd = DSD(
            self.model,
            self.optimizer,
            selection=config.selection,
            scope=config.masking.scope,
            overrides=config.masking.overrides,
            criterion=config.masking.criterion,
        )
        missing = [s for s in config.train.eval_splits if s not in task.splits]
        if missing:
            raise TrainingError(
                f"train.eval_splits names {missing}, but the task has only {list(task.splits)}"
            )
        for i, phase in enumerate(schedule):
            if phase.until is not None and phase.until.split not in task.splits:
                raise TrainingError(
                    f"schedule phase {i + 1} ({phase.compact()}) ends when {phase.until.monitor} stops "
                    f"improving, but the task has no split {phase.until.split!r} (it has {list(task.splits)})"
                )
        self.stop = StopRequest()
        self.train_step = TrainStep(
            task, self.model, runner, self.optimizer, self.dsd, self.precision, config.train.grad_clip,
            self.device, stop_requested=lambda: self.stop.requested,
        )  # fmt: skip
        self.position = Position()
        self.results: list[dict[str, Any]] = []
        self.nonfinite_total = 0
        self.nonfinite = NonfiniteGuard(config.train.max_nonfinite_steps, config.train.max_nonfinite_fraction)
        self.resumed_from: Path | None = None
        self.skipped_checkpoints: list[tuple[Path, str]] = []  # (file, why) found unreadable on resume

    # state ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "dsd": self.dsd.state_dict(),
            "position": dataclasses.asdict(self.position),
            "rng": rng_state(),
            "results": self.results,
            "schedule": self.schedule.to_list(),
            "config": dataclasses.asdict(self.config),
            "nonfinite_total": self.nonfinite_total,
            "nonfinite_counts": self.nonfinite.state_dict(),
            "precision": self.precision.state_dict(),
            "world_size": self.world_size,
        }

    def save(self, phase_end: int | None = None, collective: bool = True) -> Path:
        """Checkpoint the position (and mark it as the end of phase ``phase_end``).

        Under torchrun every rank calls this (``collective``): the ranks' RNG states are gathered so that
        a resumed run continues each rank's random stream; rank 0 alone writes. A save after a failed
        step is not collective (the other ranks may be blocked elsewhere) and keeps rank 0's RNG only."""
        rngs = distributed.gather_objects(rng_state()) if collective and self.world_size > 1 else None
        if not self.is_main:
            return self.checkpoint_dir.step_path(self.position.global_step)
        state = self.state_dict()
        if phase_end is not None:
            state["phase_end"] = phase_end  # what a start after a crash finishes (phase_completion)
        if rngs is not None:
            state["rng_ranks"] = rngs
        return self.checkpoint_dir.write(state, self.position.global_step, phase_end)

    def load(self, path: str | Path, continue_schedule: bool = False, state: dict | None = None) -> None:
        """Restore a checkpoint. With ``continue_schedule`` the checkpoint may come from another schedule
        that shares this one's completed phases (e.g. the LLR baseline starting from DSD's dense phase)."""
        state = load_checkpoint_dict(path, needs=RESUME_KEYS) if state is None else state
        config = dataclasses.asdict(self.config)
        also = tuple(getattr(self.task, "resumable_changes", ()))
        accepted = check_resumable(
            Path(path), state, self.schedule, config, self.world_size, continue_schedule, also
        )
        if accepted and self.is_main and not continue_schedule:
            tqdm.write(
                f"resume: settings changed since {path} (they do not change training): {'; '.join(accepted)}"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.dsd.load_state_dict(state["dsd"])
            self.precision.load_state_dict(state.get("precision", {}))
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{path} does not fit this model: {str(err).splitlines()[0]}") from err
        restore_rng(state, self.rank, self.world_size, self.config.train.seed)
        self.position = Position(**state["position"])
        done = self.position.phase
        self.results = list(state["results"])[:done] if continue_schedule else list(state["results"])
        self.nonfinite_total = int(state.get("nonfinite_total", 0))
        self.nonfinite.load_state_dict(None if continue_schedule else state.get("nonfinite_counts"))

    def _resume(self) -> None:
        """Continue from the newest readable checkpoint. Rank 0 looks first and renames unreadable newer
        ones ``*.corrupt``; the other ranks look after it."""
        if not self.is_main:
            distributed.barrier()
        found = self.checkpoint_dir.newest_valid(rename_damaged=self.is_main)
        if self.is_main:
            distributed.barrier()
        if found is None:
            return
        path, state, self.skipped_checkpoints = found
        self.load(path, state=state)
        self.resumed_from = path
        if self.is_main:
            repaired = complete_phase_end(self.checkpoint_dir, path, state, self.exp_dir, self._write_results)
            if repaired:
                tqdm.write(f"resume: finished the phase end a crash cut short: {'; '.join(repaired)}")
        if self.skipped_checkpoints and self.is_main:
            tqdm.write(
                f"resume: continuing from {path} (step {self.position.global_step}); skipped "
                f"{len(self.skipped_checkpoints)} unreadable newer checkpoint(s), kept as *.corrupt"
            )

    # the loop ---------------------------------------------------------------------------------------
    def run(
        self,
        resume: bool = False,
        init_from: str | Path | None = None,
        stop_after_steps: int | None = None,
        until_phase: int | None = None,
    ) -> list[dict[str, Any]]:
        """Train through the schedule (or its first ``until_phase`` phases); returns one row per phase.

        ``resume`` continues from the newest readable checkpoint; ``init_from`` starts after the completed
        phases of another run's phase-end checkpoint; ``stop_after_steps`` checkpoints and returns after
        that many steps in this call (used to test exact resumption).
        """
        if self.is_main:
            self.checkpoint_dir.remove_stale_temporaries()
        existing = self.checkpoint_dir.newest_first()
        if existing and not resume:
            raise TrainingError(
                f"{existing[0]} exists: pass --resume to continue that run, or choose a new experiment folder"
            )
        if existing:
            self._resume()
        elif init_from is not None:
            self.load(init_from, continue_schedule=True)
        check_evaluation = getattr(self.task, "check_evaluation", None)
        if check_evaluation is not None and self.is_main:  # a missing LM is found now, not after an epoch
            check_evaluation()
        masks = self.dsd.masks.masks if self.dsd.masks is not None else None
        distributed.check_same_start(self.resumed_from, self.position.global_step, self.model, masks)
        t = self.config.train
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        if self.is_main:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
        log = MetricsLog(self.exp_dir, tensorboard=t.tensorboard, enabled=self.is_main)
        log.log("data", self.position.global_step, **self.task.data_summary())
        last_phase = len(self.schedule) if until_phase is None else min(until_phase, len(self.schedule))
        steps_this_call = 0
        with self.stop, contextlib.closing(log):
            while self.position.phase < last_phase:
                pos, phase = self.position, self.schedule[self.position.phase]
                if not pos.entered:
                    self._enter_phase(log)
                while pos.epoch < phase.epochs:
                    self.dsd.set_lr(phase.lr_at(pos.epoch))
                    started = time.time()
                    try:
                        stopped, steps_this_call = self._run_epoch(log, steps_this_call, stop_after_steps)
                    finally:
                        pos.phase_seconds += time.time() - started
                    if stopped:
                        self.save()
                        return self.results
                    self._check_phase_share()
                    pos.epoch, pos.step = pos.epoch + 1, 0
                    if pos.epoch < phase.epochs:  # the phase end scores every split anyway
                        if self._end_epoch(log):
                            break  # converged: the phase end saves
                        self.save()
                self._finish_phase(log)
        return self.results

    def _end_epoch(self, log: MetricsLog) -> bool:
        """Score the first eval split (and a converging phase's monitored one) and log them; returns
        whether the phase has converged (:mod:`dsd_seq.core.convergence`)."""
        pos = self.position
        until = self.schedule[pos.phase].until
        first = self.config.train.eval_splits[:1]
        if until is None:
            self._log_epoch(log, self._evaluate(first))
            return False
        metrics = self._evaluate(list(dict.fromkeys([*first, until.split])))
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
        return converged

    def _enter_phase(self, log: MetricsLog) -> None:
        pos = self.position
        phase = self.schedule[pos.phase]
        reset = None
        if pos.phase > 0:
            masked = self.dsd.masks.masks if self.dsd.masks is not None and phase.kind != SPARSE else {}
            t = self.config.train
            reset = optimizer_state.at_boundary(
                self.optimizer,
                t.optimizer_state_at_phase,
                t.redense_state,
                [self.dsd.params[n] for n in masked],
            )
        self.dsd.enter(phase)
        if self.dsd.masks is not None:  # computed on every rank from identical weights: verify they agree
            distributed.check_identical(self.dsd.masks.masks, f"masks of phase {pos.phase + 1}")
        pos.entered = True
        self.nonfinite.new_phase()
        layers, total = self.dsd.sparsity()
        log.log(
            "phase_start", pos.global_step, phase=pos.phase, label=self.schedule.label(pos.phase), lr=phase.lr,
            sparsity=total, layers={r.name: round(r.sparsity, 6) for r in layers}, optimizer_state_reset=reset,
        )  # fmt: skip

    def _run_epoch(self, log: MetricsLog, steps_this_call: int, stop_after: int | None) -> tuple[bool, int]:
        """The rest of the current epoch; returns (stopped early, steps taken in this ``run`` call)."""
        pos = self.position
        generator = torch.Generator().manual_seed(_epoch_seed(self.config.train.seed, pos.phase, pos.epoch))
        run_epoch = self._epochs_before(pos.phase) + pos.epoch
        batches = self.task.train_batches(generator, epoch=run_epoch)
        batches = distributed.shard(batches, self.rank, self.world_size)
        self.train_step.runner.train()
        bar = tqdm(
            total=len(batches),
            initial=pos.step,
            desc=f"phase {pos.phase + 1}/{len(self.schedule)} {self.schedule.label(pos.phase)} "
            f"epoch {pos.epoch + 1}/{'<=' if self.schedule[pos.phase].until else ''}"
            f"{self.schedule[pos.phase].epochs}",
            disable=not self.config.train.progress or not self.is_main,
            leave=False,
            dynamic_ncols=True,
        )
        every = self.config.train.checkpoint_every_steps
        with contextlib.closing(bar):
            for index in range(pos.step, len(batches)):
                result = self._step(batches[index], log, index)
                self._record(result, log, index, bar)
                pos.step, pos.global_step = index + 1, pos.global_step + 1
                steps_this_call += 1
                bar.update(1)
                if every and pos.global_step % every == 0 and pos.step < len(batches):
                    self.save()
                stop = result.stop if self.world_size > 1 else self.stop.requested
                if stop or (stop_after is not None and steps_this_call >= stop_after):
                    return True, steps_this_call
        return False, steps_this_call

    def _step(self, batch: Any, log: MetricsLog, index: int) -> StepResult:
        try:
            return self.train_step(batch)
        except Exception as err:
            # The weights are as after the last completed step: keep them, so that nothing is lost.
            self.save(collective=False)
            pos = self.position
            log.log("error", pos.global_step, phase=pos.phase, epoch=pos.epoch, batch=index, error=repr(err))
            tqdm.write(f"step failed; {self.checkpoint_dir.last} holds the state before it (--resume)")
            raise

    def _record(self, result: StepResult, log: MetricsLog, index: int, bar: tqdm) -> None:
        """Log the step and count it; too many skipped (NaN/inf) steps in a row stop the run."""
        pos = self.position
        if result.overflow and not self.precision.gradient_is_broken():
            log.log("overflow", pos.global_step, phase=pos.phase, scale=self.precision.scale)
            return
        self.nonfinite.record(skipped=result.loss is None)
        if result.loss is not None:
            log.log("train", pos.global_step, loss=result.loss, lr=self.optimizer.param_groups[0]["lr"])
            bar.set_postfix(loss=f"{result.loss:.3f}")
            return
        self.nonfinite_total += 1
        log.log("nonfinite", pos.global_step, phase=pos.phase, epoch=pos.epoch, batch=index)
        if self.nonfinite.too_many_in_a_row:
            self.save()
            raise TrainingError(
                f"{self.nonfinite.counts.in_a_row} consecutive steps had a NaN/inf loss or gradient, or an "
                f"update that would have made the weights non-finite (phase {pos.phase + 1}, epoch "
                f"{pos.epoch + 1}, batch {index}); " + self._advice()
            )

    def _check_phase_share(self) -> None:
        """At an epoch end: stop when too large a share of the phase's steps so far was skipped."""
        if not self.nonfinite.phase_share_too_high:
            return
        self.save()
        pos = self.position
        raise TrainingError(
            f"phase {pos.phase + 1} ({self.schedule.label(pos.phase)}), epoch {pos.epoch + 1}: "
            f"{self.nonfinite.describe_share()} (a NaN/inf loss or gradient, or an update that would have "
            "made the weights non-finite), so the phase is not training as scheduled; " + self._advice()
        )

    def _advice(self) -> str:
        return (
            f"the weights were not updated by them and {self.checkpoint_dir.last} holds the state before. "
            "Check the data for bad utterances, set train.grad_clip or lower the learning rate; a changed "
            "config needs a new --exp-dir (--init-from a phaseN-end.pt keeps finished phases)"
        )

    def _evaluate(self, splits: list[str]) -> dict[str, dict[str, float]]:
        """Scores on rank 0 (the weights are the same on every rank); the others receive its result."""
        metrics = None
        if self.is_main:
            self.model.eval()
            with torch.no_grad():
                metrics = {split: self.task.evaluate(split, self.device) for split in splits}
        return distributed.broadcast_object(metrics)

    def _log_epoch(self, log: MetricsLog, metrics: dict[str, dict[str, float]]) -> None:
        pos = self.position
        log.log("epoch", pos.global_step, phase=pos.phase, epoch=pos.epoch, **flat_metrics(metrics))

    def _finish_phase(self, log: MetricsLog) -> None:
        """Score every split, checkpoint as ``phase<N>-end.pt`` and rewrite ``results.json``."""
        pos = self.position
        distributed.check_identical(
            dict(self.model.named_parameters()), f"weights after phase {pos.phase + 1}"
        )
        metrics = self._evaluate(self.config.train.eval_splits)
        first = self.config.train.eval_splits[0]
        self._log_epoch(log, {first: metrics[first]})
        row = phase_row(
            self.schedule, pos.phase, self.dsd, metrics, pos.phase_seconds,
            epochs_run=pos.epoch, epochs_before=self._epochs_before(pos.phase),
            plateau=Plateau(pos.plateau_best, pos.plateau_since_best),
        )  # fmt: skip
        self.results.append(row)
        scalars = {k: v for k, v in row.items() if k != "metrics"}
        log.log("phase_end", pos.global_step, **scalars, **flat_metrics(metrics))
        self.position = Position(phase=pos.phase + 1, global_step=pos.global_step)
        self.save(phase_end=pos.phase + 1)
        kill_point("phase-end-linked")  # crash window: the phase end is saved, results.json not yet
        if self.is_main:
            self._write_results(self.results)

    def _write_results(self, rows: list[dict[str, Any]]) -> Path:
        policy = {
            "at_phase": self.config.train.optimizer_state_at_phase,
            "redense": self.config.train.redense_state,
        }
        return write_results(
            self.exp_dir, self.run_label, self.schedule, self.task, rows, optimizer_state=policy
        )

    def _epochs_before(self, phase: int) -> int:
        """Epochs the run trained before ``phase``: the finished phases' realized epochs."""
        done = [row["epochs"] for row in self.results[:phase]]
        return sum(done) + sum(p.epochs for p in self.schedule.phases[len(done) : phase])

    @property
    def finished(self) -> bool:
        return self.position.phase >= len(self.schedule)


def _epoch_seed(seed: int, phase: int, epoch: int) -> int:
    return (seed * 1_000_003 + phase * 10_007 + epoch) % (2**63)
