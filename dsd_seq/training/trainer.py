"""The DSD training loop: phase -> epoch -> step.

Every position in the run (phase, epoch, step) is checkpointed with the RNG states
(:class:`~dsd_seq.training.trainer_state.TrainerCheckpoints`, the trainer's checkpoint side), and an
epoch's batch order is drawn from a generator seeded by (seed, phase, epoch)
(:mod:`dsd_seq.training.epoch_order`), so a resumed run continues exactly where it stopped. Epoch and
phase ends are scored by :mod:`dsd_seq.training.evaluation`, which also decides when a phase converged. A NaN/inf loss or gradient skips the step (:mod:`dsd_seq.training.step`); too many in a row,
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
import time
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
from dsd_seq.training.checkpoint_average import (
    AverageError,
    apply_state_masks,
    average_states,
    chosen_epochs,
    parse_rule,
)
from dsd_seq.training.checkpoint_dir import CheckpointDir
from dsd_seq.training.config import RunConfig
from dsd_seq.training.dev_selection import DEFAULT_SELECT_ON
from dsd_seq.training.epoch_order import epoch_seed, epochs_before
from dsd_seq.training.evaluation import Evaluation
from dsd_seq.training.metrics_log import MetricsLog
from dsd_seq.training.nonfinite_guard import NonfiniteGuard
from dsd_seq.training.optimizer import build_optimizer
from dsd_seq.training.position import Position
from dsd_seq.training.precision import Precision
from dsd_seq.training.provenance import environment
from dsd_seq.training.results import flat_metrics, phase_row
from dsd_seq.training.step import StepResult, TrainStep
from dsd_seq.training.stop_request import StopRequest
from dsd_seq.training.task import Task
from dsd_seq.training.trainer_state import TrainerCheckpoints
from dsd_seq.training.training_error import TrainingError

__all__ = ["Position", "Trainer", "TrainingError"]  # Position and TrainingError: imported from here too


class Trainer(TrainerCheckpoints):
    """Runs a :class:`Schedule` on a :class:`Task`, writing checkpoints (:class:`TrainerCheckpoints`),
    metrics and per-phase results."""

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
            seed=config.train.seed,
        )
        self.evaluation = Evaluation(
            task, self.model, self.device, config.train.eval_splits, schedule, self.is_main,
            config.train.select_on,
        )  # fmt: skip
        self.stop = StopRequest()
        self.interrupted = False  # set when a signal stopped the run before its end
        self.train_step = TrainStep(
            task, self.model, runner, self.optimizer, self.dsd, self.precision, config.train.grad_clip,
            self.device, stop_requested=lambda: self.stop.requested,
        )  # fmt: skip
        self.position = Position()
        self.results: list[dict[str, Any]] = []
        self.nonfinite_total = 0
        self.nonfinite = NonfiniteGuard(config.train.max_nonfinite_steps, config.train.max_nonfinite_fraction)
        self.average_rule = parse_rule(config.train.average)  # keep each epoch, average at phase ends
        self.environment = environment()  # the code this process trains with, named in each phase row
        self.started_from: str | None = None
        self.resumed_from: Path | None = None
        self.skipped_checkpoints: list[tuple[Path, str]] = []  # (file, why) found unreadable on resume

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
                        converged, metrics = self.evaluation.end_epoch(log, pos)
                        best = self._note_best(metrics)
                        if converged:
                            break  # the phase end saves (and names it the best when it is)
                        self.save(
                            best_of=pos.phase + 1 if best else None,
                            epoch_of=(pos.phase + 1, pos.epoch) if self.average_rule else None,
                        )
                self._finish_phase(log)
        return self.results

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
        generator = torch.Generator().manual_seed(epoch_seed(self.config.train.seed, pos.phase, pos.epoch))
        run_epoch = epochs_before(self.schedule, self.results, pos.phase) + pos.epoch
        batches = self.task.train_batches(generator, epoch=run_epoch)
        batches = distributed.shard(batches, self.rank, self.world_size)
        # a gradual or RigL/SET phase counts its steps: its length is planned once (and checkpointed);
        # too short a phase for its `every` is said once (warnings.warn) and logged
        short = self.dsd.plan_steps(self.schedule[pos.phase].epochs * len(batches))
        if short is not None:
            log.log("warning", pos.global_step, phase=pos.phase, message=short)
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
                update = self.dsd.take_mask_update()  # a gradual or RigL/SET phase changed its masks
                if update is not None:
                    log.log("mask_update", pos.global_step, phase=pos.phase, **update)
                pos.step, pos.global_step = index + 1, pos.global_step + 1
                steps_this_call += 1
                bar.update(1)
                if every and pos.global_step % every == 0 and pos.step < len(batches):
                    self.save()
                stop = result.stop if self.world_size > 1 else self.stop.requested
                if stop:
                    self.interrupted = True  # a signal, here or on another rank: the run is unfinished
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

    def _finish_phase(self, log: MetricsLog) -> None:
        """Score every split, checkpoint as ``phase<N>-end.pt`` and rewrite ``results.json``. The row also
        holds the phase's dev-selected epoch and its scores; with ``train.handover: best`` that epoch's
        weights and optimizer state are what the phase hands on (and what ``phase<N>-end.pt`` holds)."""
        pos = self.position
        # a gradual phase whose epochs had fewer batches than planned ends at its final sparsity anyway
        unfinished = self.dsd.finish_phase()
        if unfinished is not None:
            log.log("warning", pos.global_step, phase=pos.phase, message=unfinished)
        distributed.check_identical(
            dict(self.model.named_parameters()), f"weights after phase {pos.phase + 1}"
        )
        metrics = self.evaluation.end_phase(log, pos)
        last_is_best = self._note_best(metrics) or pos.best_epoch == pos.epoch
        # read once, for its scores and (handover: best) to continue from; rank 0 alone reads files
        best_state = None
        if pos.best_epoch is not None and not last_is_best and self.is_main:
            best_state = self._best_state(self.checkpoint_dir.best_path(pos.phase + 1))
        best = self._best_record(metrics, last_is_best, best_state)
        average = self._average_record() if self.average_rule else None  # (the live model is the last epoch)
        handover = self.config.train.handover
        handed, last = metrics, None
        if handover == "best" and best is not None and not last_is_best:
            if best["metrics"] is not None and self._hand_over_best(best_state):
                handed, last = best["metrics"], {"epoch": pos.epoch, "metrics": metrics}
            else:
                handover = "last (the dev-selected checkpoint could not be used)"
        row = phase_row(
            self.schedule, pos.phase, self.dsd, handed, pos.phase_seconds,
            epochs_run=pos.epoch, epochs_before=epochs_before(self.schedule, self.results, pos.phase),
            plateau=Plateau(pos.plateau_best, pos.plateau_since_best), environment=self.environment,
            best=best, handover=handover, last=last, average=average,
            monitor_values=list(pos.epoch_values) if best is not None else None,
        )  # fmt: skip
        self.results.append(row)
        nested = ("metrics", "environment", "best", "last", "average", "monitor_values")
        scalars = {k: v for k, v in row.items() if k not in nested}
        if best is not None:
            scalars["best_epoch"] = best["epoch"]
        log.log("phase_end", pos.global_step, **scalars, **flat_metrics(metrics))
        finished = pos.phase + 1
        self.position = Position(phase=finished, global_step=pos.global_step)
        self.save(phase_end=finished, best_of=finished if best is not None and last_is_best else None)
        kill_point("phase-end-linked")  # crash window: the phase end is saved, results.json not yet
        if self.is_main:
            self._write_results(self.results)

    def _note_best(self, metrics: dict[str, dict[str, float]]) -> bool:
        """Whether the epoch just scored is the phase's best so far on its monitor (kept in the position)."""
        pos = self.position
        monitor = self.evaluation.monitor(pos.phase)
        if monitor is None:
            return False
        value = metrics.get(monitor.split, {}).get(monitor.name)
        if value is None:
            if self.schedule[pos.phase].until is None and self.config.train.select_on == DEFAULT_SELECT_ON:
                return False  # a task that reports no loss: nothing to select on by default
            raise TrainingError(
                f"phase {pos.phase + 1} keeps the epoch with the best {monitor.key}, but the task's "
                f"evaluate({monitor.split!r}) returns only {sorted(metrics.get(monitor.split, {}))}; set "
                f"train.select_on to one of those, e.g. {monitor.split}_{self.task.metric}"
            )
        values = pos.epoch_values
        values.extend([None] * (pos.epoch - len(values)))
        values[pos.epoch - 1] = float(value)  # (the phase end scores a converged epoch again: same value)
        if not monitor.improves(float(value), pos.best_value):
            return False
        pos.best_epoch, pos.best_value = pos.epoch, float(value)
        pos.best_step = pos.global_step  # the save that follows (the epoch's, or the phase end) is this step
        return True

    def _best_record(
        self, metrics: dict[str, dict[str, float]], last_is_best: bool, best_state: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The phase's dev-selected epoch for its results row: which, on what, and its scores on every
        split (the last epoch's when it is the best, else ``best_state``'s, ``phase<N>-best.pt``, scored
        now; None when rank 0 could not use it)."""
        pos = self.position
        monitor = self.evaluation.monitor(pos.phase)
        if monitor is None or pos.best_epoch is None:
            return None
        if last_is_best:
            scores = metrics
        else:
            scores = self._score_weights(best_state["model"] if best_state is not None else None)
        return {"epoch": pos.best_epoch, "monitor": monitor.key, "value": pos.best_value, "metrics": scores}

    def _best_state(self, path: Path) -> dict[str, Any] | None:
        """The dev-selected checkpoint, checked to hold the step the position recorded; None, said, when
        it is unreadable or another (a damaged newer file was skipped on resume and the epoch redone)."""
        try:
            state = load_checkpoint_dict(path, "dev-selected checkpoint")
        except CheckpointError as err:
            tqdm.write(f"the phase's dev-selected epoch is not used: {err}")
            return None
        step = self.position.best_step
        if step is not None and state.get("position", {}).get("global_step") != step:
            tqdm.write(
                f"the phase's dev-selected epoch is not used: {path} holds step "
                f"{state.get('position', {}).get('global_step')}, not the recorded step {step}"
            )
            return None
        return state

    def _score_weights(self, weights: dict[str, torch.Tensor] | None) -> dict[str, dict[str, float]] | None:
        """Every eval split scored with ``weights`` (rank 0's; None: nothing to score); the model keeps its
        own weights afterwards."""
        kept = None
        if self.is_main and weights is not None:
            kept = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.model.load_state_dict(weights)
        if not distributed.broadcast_object(kept is not None or not self.is_main):
            return None
        # an extra evaluation must not move the training's random streams (a DataLoader draws its seed
        # from torch's generator): the run trains as it would without this row
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                return self.evaluation.scores(self.evaluation.eval_splits)
        finally:
            if kept is not None:
                self.model.load_state_dict(kept)

    def _average_record(self) -> dict[str, Any] | None:
        """The phase's averaged model (``train.average``): which epochs, and its scores on every split."""
        pos = self.position
        how, count = self.average_rule
        monitor = self.evaluation.monitor(pos.phase)
        values = (list(pos.epoch_values) + [None] * pos.epoch)[: pos.epoch]  # None: not scored
        try:
            epochs = chosen_epochs(how, count, values, bool(monitor and monitor.higher_is_better))
        except AverageError as err:
            tqdm.write(f"phase {pos.phase + 1}: no averaged model: {err}")
            return None
        weights = None
        if self.is_main:
            try:
                states = []
                for epoch in epochs:
                    if epoch == pos.epoch:  # the last epoch is the live model
                        states.append({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
                        continue
                    path = self.checkpoint_dir.epoch_path(pos.phase + 1, epoch)
                    states.append(load_checkpoint_dict(path, "epoch checkpoint")["model"])
                masks = self.dsd.masks.state_dict() if self.dsd.masks is not None else {}
                weights = apply_state_masks(average_states(states), masks)
            except (CheckpointError, AverageError, OSError) as err:  # the run goes on without the row
                tqdm.write(f"phase {pos.phase + 1}: no averaged model: {err}")
        return {"rule": self.config.train.average, "epochs": epochs, "metrics": self._score_weights(weights)}

    def _hand_over_best(self, saved: dict[str, Any] | None) -> bool:
        """Continue from the phase's dev-selected epoch (``saved``, rank 0's): its weights and optimizer
        state, on every rank; False when rank 0 could not use it, and every rank keeps the last epoch."""
        state = None
        if self.is_main and saved is not None:
            state = {"model": saved["model"], "optimizer": saved["optimizer"], "dsd": saved.get("dsd")}
        state = distributed.broadcast_object(state)
        if state is None:
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["dsd"] is not None:  # the epoch's own masks: a gradual or RigL/SET phase changes them
            self.dsd.load_state_dict(state["dsd"])
            if self.dsd.updates is not None:  # the phase has ended: its ramp is not completed from there
                self.dsd.updates.finished = True
        return True

    @property
    def finished(self) -> bool:
        return self.position.phase >= len(self.schedule)
