"""The DSD training loop: a plain loop over phases, epochs and batches.

Every position in the run (phase, epoch, step) is checkpointed with the RNG states and the epoch's batch
order is drawn from a generator seeded by (seed, phase, epoch), so a resumed run continues exactly where
it stopped. A NaN/inf loss or gradient skips the step (the weights and optimizer state stay as they were);
too many in a row stop the run with the last good checkpoint on disk.

Checkpoints on disk (``checkpoints/``): ``step-<global step>.pt`` (the newest ``train.keep_checkpoints``
are kept), ``phaseN-end.pt`` (kept for good: the LLR baseline and reports start from them) and ``last.pt``
(a hard link to the newest). ``--resume`` takes the newest one that passes its checksum and says which
newer ones it skipped (they are renamed ``*.corrupt``), so a file torn by a crash or a full disk costs
only the steps since the one before it.

Under ``torchrun`` (see :mod:`dsd_seq.training.distributed`) every rank runs this same loop on its share of each
epoch's batches, with the model wrapped in DistributedDataParallel. Rank 0 alone writes checkpoints,
metrics and progress bars and runs the evaluation (the others wait for its result); every decision that
changes the weights (skip a NaN step, stop on a signal) is agreed by all ranks in the same step, and masks
and weights are verified identical across ranks when pruning, after resuming and at every phase end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from dsd_seq.core.dsd import DSD
from dsd_seq.core.schedule import SPARSE, Schedule
from dsd_seq.safe_io import CheckpointError, load_safely, save_checkpoint, write_atomic
from dsd_seq.training import distributed
from dsd_seq.training.checkpoint import rng_state, set_rng_state
from dsd_seq.training.config import RunConfig
from dsd_seq.training.metrics_log import MetricsLog
from dsd_seq.training.precision import Precision
from dsd_seq.training.task import Task

CHECKPOINT_FORMAT = 1
#: Config fields that may change between a run and its resumption (they do not change the computation).
RESUMABLE_CHANGES = (
    "schedule",
    "task_args.data",
    "train.progress",
    "train.tensorboard",
    "train.num_threads",
    "train.device",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.max_nonfinite_steps",
    "train.eval_splits",
)


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


@dataclass
class StepResult:
    """What one training step did. ``loss`` is None when the step was skipped without an update."""

    loss: float | None
    overflow: bool = False  # fp16: the gradient scaler skipped the step (inf/NaN at the current scale)
    stop: bool = False  # under torchrun: some rank was asked to stop (SIGINT/SIGTERM), so all stop here


def build_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    t = config.train
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer in ("sgd", "nesterov"):
        return torch.optim.SGD(
            params,
            lr=1.0,
            momentum=t.momentum,
            nesterov=t.optimizer == "nesterov",
            weight_decay=t.weight_decay,
        )
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=1.0, weight_decay=t.weight_decay)
    return torch.optim.AdamW(params, lr=1.0, weight_decay=t.weight_decay)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device=cuda but no CUDA device is visible; use train.device=cpu or auto")
    return torch.device(name)


class Trainer:
    """Runs a :class:`Schedule` on a :class:`Task`, writing checkpoints, metrics and per-phase results."""

    def __init__(
        self, task: Task, schedule: Schedule, config: RunConfig, exp_dir: str | Path, run_label: str = "DSD"
    ):
        self.task = task
        self.run_label = run_label  # how results tables name this run: "DSD", or "LLR" for the baseline
        self.schedule = schedule
        self.config = config
        self.exp_dir = Path(exp_dir)
        self.ckpt_dir = self.exp_dir / "checkpoints"
        self.device = distributed.init_from_env(resolve_device(config.train.device))
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.is_main = self.rank == 0
        self.model = task.model.to(self.device)
        self.ddp_model = None
        if self.world_size > 1:
            # DDP copies rank 0's weights to every rank here; each rank then draws its own dropout noise.
            self.ddp_model = DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )
            torch.manual_seed(_rank_seed(config.train.seed, self.rank))
        self.precision = Precision(config.train.precision, self.device)
        self.optimizer = build_optimizer(self.model, config)
        self.dsd = DSD(self.model, self.optimizer, selection=config.selection, masking=config.masking)
        splits = getattr(task, "splits", None)
        missing = [s for s in config.train.eval_splits if splits is not None and s not in splits]
        if missing:
            raise TrainingError(f"train.eval_splits names {missing}, but the task has only {list(splits)}")
        self.position = Position()
        self.results: list[dict[str, Any]] = []
        self.nonfinite_total = 0
        self.resumed_from: Path | None = None
        self.skipped_checkpoints: list[tuple[Path, str]] = []  # (file, why) found unreadable on resume
        self._stop_requested = False

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
            "precision": self.precision.state_dict(),
            "world_size": self.world_size,
        }

    def save(self, phase_end: int | None = None, collective: bool = True) -> Path:
        """Write ``step-<global step>.pt``, link ``last.pt`` (and ``phase<N>-end.pt``) to it, drop old
        step checkpoints. Every file is complete or absent whatever moment a crash comes.

        Under torchrun every rank calls this (``collective``): the ranks' RNG states are gathered so that
        a resumed run continues each rank's random stream; rank 0 alone writes. A save after a failed
        step is not collective (the other ranks may be blocked elsewhere) and keeps rank 0's RNG only."""
        path = self.ckpt_dir / f"step-{self.position.global_step:09d}.pt"
        rngs = distributed.gather_objects(rng_state()) if collective and self.world_size > 1 else None
        if not self.is_main:
            return path
        state = self.state_dict()
        if rngs is not None:
            state["rng_ranks"] = rngs
        save_checkpoint(state, path)
        if phase_end is not None:
            _link_atomic(path, self.ckpt_dir / f"phase{phase_end}-end.pt")
        _link_atomic(path, self.ckpt_dir / "last.pt")
        for old in _step_checkpoints(self.ckpt_dir)[self.config.train.keep_checkpoints :]:
            old.unlink(missing_ok=True)
        return path

    def checkpoints(self) -> list[Path]:
        """Every checkpoint of this run, newest first: step files, last.pt, then phase ends."""
        phase_ends = sorted(self.ckpt_dir.glob("phase*-end.pt"), key=_number_in_name, reverse=True)
        last = [self.ckpt_dir / "last.pt"] if (self.ckpt_dir / "last.pt").is_file() else []
        return _step_checkpoints(self.ckpt_dir) + last + phase_ends

    def _load_newest_valid(self) -> None:
        """Resume from the newest readable checkpoint; unreadable newer ones are renamed ``*.corrupt``."""
        for path in self.checkpoints():
            try:
                state = load_safely(path)
            except CheckpointError as err:
                self.skipped_checkpoints.append((path, str(err)))
                if self.is_main:  # the other ranks look only after rank 0 has renamed what it found
                    tqdm.write(f"resume: skipping {path}: {err}")
                    path.rename(path.with_name(path.name + ".corrupt"))
                continue
            self.load(path, state=state)
            self.resumed_from = path
            if self.skipped_checkpoints and self.is_main:
                tqdm.write(
                    f"resume: continuing from {path} (step {self.position.global_step}); skipped "
                    f"{len(self.skipped_checkpoints)} unreadable newer checkpoint(s), kept as *.corrupt"
                )
            return
        if self.skipped_checkpoints:
            raise CheckpointError(
                f"{self.ckpt_dir}: no readable checkpoint; all {len(self.skipped_checkpoints)} were damaged "
                f"(kept as *.corrupt). Start again in a new --exp-dir, or --init-from a phase-end checkpoint"
            )

    def load(self, path: str | Path, continue_schedule: bool = False, state: dict | None = None) -> None:
        """Restore a checkpoint. With ``continue_schedule`` the checkpoint may come from another schedule
        that shares this one's completed phases (e.g. the LLR baseline starting from DSD's dense phase)."""
        state = load_safely(path) if state is None else state
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path}: checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}"
            )
        position = Position(**state["position"])
        done = position.phase
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.world_size and not continue_schedule:
            raise CheckpointError(
                f"{path} was written by a run of {saved_world} process(es), this one has {self.world_size}: "
                f"each process's share of an epoch depends on their number. Resume with {saved_world} "
                "(torchrun --nnodes x --nproc-per-node), or start a new experiment folder with --init-from "
                "a phaseN-end.pt"
            )
        if continue_schedule:
            mine, theirs = self.schedule.to_list()[:done], state["schedule"][:done]
            if mine != theirs or position.epoch or position.step:
                raise CheckpointError(
                    f"{path}: its completed phases {theirs} (position {position}) are not a prefix of this "
                    f"schedule {self.schedule.compact()}; start from a phase-end checkpoint of a matching run"
                )
        elif state["schedule"] != self.schedule.to_list():
            raise CheckpointError(
                f"{path} was written by schedule {state['schedule']}, not {self.schedule.to_list()}; "
                "resume with the same schedule or use a new experiment folder"
            )
        changed = _changed_keys(state.get("config", {}), dataclasses.asdict(self.config))
        if changed:
            raise CheckpointError(
                f"{path} was written with a different configuration: {'; '.join(changed)}. Resume with the "
                "original settings (see config.yaml in the experiment folder) or use a new experiment folder"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.dsd.load_state_dict(state["dsd"])
            self.precision.load_state_dict(state.get("precision", {}))
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{path} does not fit this model: {str(err).splitlines()[0]}") from err
        rngs = state.get("rng_ranks")
        if rngs is not None and len(rngs) == self.world_size:
            set_rng_state(rngs[self.rank])
        else:
            set_rng_state(state["rng"])
            if self.world_size > 1:  # a phase-end start under another process count: fresh per-rank streams
                torch.manual_seed(_rank_seed(self.config.train.seed, self.rank))
        self.position = position
        self.results = list(state["results"])[:done] if continue_schedule else list(state["results"])
        self.nonfinite_total = int(state.get("nonfinite_total", 0))

    # the loop ---------------------------------------------------------------------------------------
    def run(
        self,
        resume: bool = False,
        init_from: str | Path | None = None,
        stop_after_steps: int | None = None,
        until_phase: int | None = None,
    ) -> list[dict[str, Any]]:
        """Train through the schedule; returns one result row per phase.

        ``resume`` continues from the newest readable checkpoint; ``init_from`` starts after the completed
        phases of another run's phase-end checkpoint; ``stop_after_steps`` checkpoints and returns after
        that many steps in this call (used to test exact resumption).
        """
        if self.is_main:
            for stale in self.ckpt_dir.glob(".*.tmp"):  # a write cut short by a crash
                stale.unlink(missing_ok=True)
        existing = self.checkpoints()
        if existing:
            if not resume:
                raise TrainingError(
                    f"{existing[0]} exists: pass --resume to continue that run, or choose a new experiment folder"
                )
            if not self.is_main:
                distributed.barrier()  # rank 0 first: it renames damaged checkpoints out of the way
            self._load_newest_valid()
            if self.is_main:
                distributed.barrier()
        elif init_from is not None:
            self.load(init_from, continue_schedule=True)
        self._check_ranks_agree()
        t = self.config.train
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        if self.is_main:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
        log = MetricsLog(self.exp_dir, tensorboard=t.tensorboard, enabled=self.is_main)
        log.log("data", self.position.global_step, **self.task.data_summary())
        steps_this_call = 0
        previous_handlers = self._install_signal_handlers()
        try:
            last_phase = len(self.schedule) if until_phase is None else min(until_phase, len(self.schedule))
            while self.position.phase < last_phase:
                pos = self.position
                phase = self.schedule[pos.phase]
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
                    pos.epoch, pos.step = pos.epoch + 1, 0
                    if pos.epoch < phase.epochs:  # the phase end scores every split anyway
                        self._log_epoch(log, self._evaluate(t.eval_splits[:1]))
                        self.save()
                self._finish_phase(log)
            return self.results
        finally:
            self._restore_signal_handlers(previous_handlers)
            log.close()

    def _check_ranks_agree(self) -> None:
        """Under torchrun: every rank starts from the same checkpoint, weights and masks, or none runs."""
        if self.world_size == 1:
            return
        starts = distributed.gather_objects((str(self.resumed_from), self.position.global_step))
        if any(start != starts[0] for start in starts):
            raise TrainingError(
                f"the ranks start from different checkpoints (rank: (file, step) = {dict(enumerate(starts))}); "
                "the experiment folder must be one folder on a file system every node shares"
            )
        distributed.check_identical(dict(self.model.named_parameters()), "weights at the start")
        if self.dsd.masks is not None:
            distributed.check_identical(self.dsd.masks.masks, "masks at the start")

    def _enter_phase(self, log: MetricsLog) -> None:
        pos = self.position
        phase = self.schedule[pos.phase]
        self.dsd.enter(phase)
        if self.dsd.masks is not None:  # computed on every rank from identical weights: verify they agree
            distributed.check_identical(self.dsd.masks.masks, f"masks of phase {pos.phase + 1}")
        pos.entered = True
        layers, total = self.dsd.sparsity()
        log.log(
            "phase_start",
            pos.global_step,
            phase=pos.phase,
            label=self.schedule.label(pos.phase),
            lr=phase.lr,
            sparsity=total,
            layers={r.name: round(r.sparsity, 6) for r in layers},
        )

    def _log_epoch(self, log: MetricsLog, dev: dict[str, dict[str, float]]) -> None:
        pos = self.position
        log.log("epoch", pos.global_step, phase=pos.phase, epoch=pos.epoch, **_flatten(dev))

    def _run_epoch(self, log: MetricsLog, steps_this_call: int, stop_after: int | None) -> tuple[bool, int]:
        pos = self.position
        phase = self.schedule[pos.phase]
        generator = torch.Generator().manual_seed(_epoch_seed(self.config.train.seed, pos.phase, pos.epoch))
        epochs_before = sum(p.epochs for p in self.schedule.phases[: pos.phase])
        batches = _train_batches(self.task, generator, epochs_before + pos.epoch)
        batches = distributed.shard(batches, self.rank, self.world_size)
        self.model.train()
        bar = tqdm(
            total=len(batches),
            initial=pos.step,
            desc=f"phase {pos.phase + 1}/{len(self.schedule)} {self.schedule.label(pos.phase)} "
            f"epoch {pos.epoch + 1}/{phase.epochs}",
            disable=not self.config.train.progress or not self.is_main,
            leave=False,
            dynamic_ncols=True,
        )
        consecutive_bad = 0
        every = self.config.train.checkpoint_every_steps
        try:
            for index in range(pos.step, len(batches)):
                try:
                    result = self._train_step(batches[index])
                except Exception as err:
                    # The weights are as after the last completed step: keep them, so that nothing is lost.
                    self.save(collective=False)
                    log.log(
                        "error",
                        pos.global_step,
                        phase=pos.phase,
                        epoch=pos.epoch,
                        batch=index,
                        error=repr(err),
                    )
                    tqdm.write(
                        f"step failed; {self.ckpt_dir / 'last.pt'} holds the state before it (--resume)"
                    )
                    raise
                if result.overflow and not self.precision.gradient_is_broken():
                    log.log("overflow", pos.global_step, phase=pos.phase, scale=self.precision.scale)
                elif result.loss is None:
                    consecutive_bad += 1
                    self.nonfinite_total += 1
                    log.log("nonfinite", pos.global_step, phase=pos.phase, epoch=pos.epoch, batch=index)
                    if consecutive_bad >= self.config.train.max_nonfinite_steps:
                        self.save()
                        raise TrainingError(
                            f"{consecutive_bad} consecutive steps had a NaN/inf loss or gradient (phase "
                            f"{pos.phase + 1}, epoch {pos.epoch + 1}, batch {index}); the weights were not "
                            f"updated by them and {self.ckpt_dir / 'last.pt'} holds the state before. Check the "
                            "data for bad utterances, set train.grad_clip or lower the learning rate; a changed "
                            "config needs a new --exp-dir (--init-from a phaseN-end.pt keeps finished phases)"
                        )
                else:
                    consecutive_bad = 0
                    log.log(
                        "train", pos.global_step, loss=result.loss, lr=self.optimizer.param_groups[0]["lr"]
                    )
                    bar.set_postfix(loss=f"{result.loss:.3f}")
                pos.step, pos.global_step = index + 1, pos.global_step + 1
                steps_this_call += 1
                bar.update(1)
                if every and pos.global_step % every == 0 and pos.step < len(batches):
                    self.save()
                stop = result.stop if self.world_size > 1 else self._stop_requested
                if stop or (stop_after is not None and steps_this_call >= stop_after):
                    return True, steps_this_call
        finally:
            bar.close()
        return False, steps_this_call

    def _train_step(self, batch: Any) -> StepResult:
        """One optimizer step under the DSD constraint; no update if the loss or the gradients are not
        finite (``loss`` None), or if fp16's gradient scaler skips it (``overflow``).

        Order (see :mod:`dsd_seq.training.precision`): forward under autocast -> (scaled) backward -> mask
        gradients -> unscale -> clip -> step -> re-apply the masks. Under DDP the backward pass averages
        the gradients over the ranks, so every later decision is the same on every rank; only the loss
        differs per rank, so its finiteness (and any stop request) is agreed first."""
        self.optimizer.zero_grad(set_to_none=True)
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]  # e.g. batch-norm statistics
        with self._model_for_training(), self.precision.autocast():
            loss = self.task.loss(batch, self.device)
        finite, stop = bool(torch.isfinite(loss)), False
        loss_value = float(loss.detach()) if finite else None
        if self.world_size > 1:
            local = torch.tensor([loss_value or 0.0, float(not finite), float(self._stop_requested)])
            total = distributed.all_reduce_sum(local)
            finite, stop = bool(total[1] == 0), bool(total[2] > 0)
            loss_value = float(total[0]) / self.world_size if finite else None
        if not finite:
            _restore(buffers)
            return StepResult(None, stop=stop)
        self.precision.backward(loss)
        self.dsd.mask_gradients()
        self.precision.unscale_(self.optimizer)
        clip = self.config.train.grad_clip or math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if self.precision.scaler is None and not torch.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            _restore(buffers)
            return StepResult(None, stop=stop)
        if not self.precision.step(self.optimizer):  # fp16: the scaler found inf/NaN and skipped the step
            self.optimizer.zero_grad(set_to_none=True)
            _restore(buffers)
            return StepResult(None, overflow=True, stop=stop)
        self.dsd.apply_masks()
        return StepResult(loss_value, stop=stop)

    @contextlib.contextmanager
    def _model_for_training(self):
        """Under DDP, the task's loss runs through the DDP wrapper (which averages the gradients over the
        ranks in backward); evaluation and everything else use the plain model."""
        if self.ddp_model is None:
            yield
            return
        self.task.model = self.ddp_model
        try:
            yield
        finally:
            self.task.model = self.model

    def _evaluate(self, splits: list[str]) -> dict[str, dict[str, float]]:
        """Scores on rank 0 (the weights are the same on every rank); the others receive its result."""
        metrics = None
        if self.is_main:
            self.model.eval()
            with torch.no_grad():
                metrics = {split: self.task.evaluate(split, self.device) for split in splits}
        return distributed.broadcast_object(metrics)

    def _finish_phase(self, log: MetricsLog) -> None:
        pos = self.position
        phase = self.schedule[pos.phase]
        distributed.check_identical(
            dict(self.model.named_parameters()), f"weights after phase {pos.phase + 1}"
        )
        metrics = self._evaluate(self.config.train.eval_splits)
        first = self.config.train.eval_splits[0]
        self._log_epoch(log, {first: metrics[first]})
        layers, total_sparsity = self.dsd.sparsity()
        row = {
            "phase": pos.phase,
            "label": self.schedule.label(pos.phase),
            "kind": phase.kind,
            "epochs": phase.epochs,
            "cumulative_epochs": sum(p.epochs for p in self.schedule.phases[: pos.phase + 1]),
            "lr": phase.lr,
            "target_sparsity": phase.sparsity if phase.kind == SPARSE else 0.0,
            "measured_sparsity": total_sparsity,
            "layer_sparsity": {r.name: round(r.sparsity, 6) for r in layers},
            "metrics": metrics,
            "seconds": round(pos.phase_seconds, 2),
        }
        self.results.append(row)
        log.log(
            "phase_end",
            pos.global_step,
            **{k: v for k, v in row.items() if k != "metrics"},
            **_flatten(metrics),
        )
        self.position = Position(phase=pos.phase + 1, global_step=pos.global_step)
        self.save(phase_end=pos.phase + 1)
        summary = {
            "run": self.run_label,
            "schedule": self.schedule.compact(),
            "metric": self.task.metric,
            "higher_is_better": bool(self.task.higher_is_better),
            "phases": self.results,
        }
        if self.is_main:
            write_atomic(self.exp_dir / "results.json", (json.dumps(summary, indent=2) + "\n").encode())

    # signals ----------------------------------------------------------------------------------------
    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def request_stop(signum, frame):
            if self._stop_requested:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            self._stop_requested = True
            tqdm.write(
                "stopping after this step; the checkpoint will hold the position (Ctrl-C again to abort)"
            )

        return {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    @property
    def finished(self) -> bool:
        return self.position.phase >= len(self.schedule)


def _step_checkpoints(folder: Path) -> list[Path]:
    """``step-*.pt`` files, newest (highest global step) first."""
    return sorted(folder.glob("step-*.pt"), key=_number_in_name, reverse=True)


def _number_in_name(path: Path) -> int:
    digits = "".join(c for c in path.name if c.isdigit())
    return int(digits) if digits else -1


def _link_atomic(source: Path, target: Path) -> None:
    """Make ``target`` name the same file as ``source`` (a hard link: no copy, no extra disk), replacing
    it atomically; copies where the file system has no hard links."""
    tmp = target.with_name(f".{target.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _restore(buffers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for buffer, saved in buffers:
            buffer.copy_(saved)


def _train_batches(task: Task, generator: torch.Generator, epoch: int) -> Any:
    """The epoch's batches; ``epoch`` (counted from the run's start) only for tasks that take it."""
    if "epoch" in inspect.signature(task.train_batches).parameters:
        return task.train_batches(generator, epoch=epoch)
    return task.train_batches(generator)


def _rank_seed(seed: int, rank: int) -> int:
    """Rank 0 keeps the run's seed (single-process runs are unchanged); other ranks get seeds far from it,
    so rank 1 of seed s never replays rank 0 of seed s + 1 (compare's seeds are 0..N-1)."""
    return seed + 1_000_003 * rank


def _epoch_seed(seed: int, phase: int, epoch: int) -> int:
    return (seed * 1_000_003 + phase * 10_007 + epoch) % (2**63)


def _flatten(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{split}_{name}": value for split, values in metrics.items() for name, value in values.items()}


def _flat(config: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and name not in RESUMABLE_CHANGES:
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def _changed_keys(saved: dict, current: dict) -> list[str]:
    """Config keys (other than RESUMABLE_CHANGES) whose values differ, as 'key: old -> new'."""
    old, new = _flat(saved), _flat(current)
    keys = sorted((set(old) | set(new)) - set(RESUMABLE_CHANGES))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
