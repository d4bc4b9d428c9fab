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
"""

from __future__ import annotations

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
from tqdm.auto import tqdm

from dsd_seq.checkpoint import (
    CheckpointError,
    load_safely,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_atomic,
)
from dsd_seq.config import RunConfig
from dsd_seq.dsd import DSD
from dsd_seq.metrics_log import MetricsLog
from dsd_seq.schedule import SPARSE, Schedule
from dsd_seq.task import Task

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
        self.device = resolve_device(config.train.device)
        self.model = task.model.to(self.device)
        self.optimizer = build_optimizer(self.model, config)
        self.dsd = DSD(
            self.model,
            self.optimizer,
            selection=config.selection.to_selection(),
            scope=config.masking.scope,
            overrides=config.masking.overrides,
        )
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
        }

    def save(self, phase_end: int | None = None) -> Path:
        """Write ``step-<global step>.pt``, link ``last.pt`` (and ``phase<N>-end.pt``) to it, drop old
        step checkpoints. Every file is complete or absent whatever moment a crash comes."""
        path = self.ckpt_dir / f"step-{self.position.global_step:09d}.pt"
        save_checkpoint(self.state_dict(), path)
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
                tqdm.write(f"resume: skipping {path}: {err}")
                path.rename(path.with_name(path.name + ".corrupt"))
                continue
            self.load(path, state=state)
            self.resumed_from = path
            if self.skipped_checkpoints:
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
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{path} does not fit this model: {str(err).splitlines()[0]}") from err
        set_rng_state(state["rng"])
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
        for stale in self.ckpt_dir.glob(".*.tmp"):  # a write cut short by a crash
            stale.unlink(missing_ok=True)
        existing = self.checkpoints()
        if existing:
            if not resume:
                raise TrainingError(
                    f"{existing[0]} exists: pass --resume to continue that run, or choose a new experiment folder"
                )
            self._load_newest_valid()
        elif init_from is not None:
            self.load(init_from, continue_schedule=True)
        t = self.config.train
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        log = MetricsLog(self.exp_dir, tensorboard=t.tensorboard)
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

    def _enter_phase(self, log: MetricsLog) -> None:
        pos = self.position
        phase = self.schedule[pos.phase]
        self.dsd.enter(phase)
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
        self.model.train()
        bar = tqdm(
            total=len(batches),
            initial=pos.step,
            desc=f"phase {pos.phase + 1}/{len(self.schedule)} {self.schedule.label(pos.phase)} "
            f"epoch {pos.epoch + 1}/{phase.epochs}",
            disable=not self.config.train.progress,
            leave=False,
            dynamic_ncols=True,
        )
        consecutive_bad = 0
        every = self.config.train.checkpoint_every_steps
        try:
            for index in range(pos.step, len(batches)):
                try:
                    loss_value = self._train_step(batches[index])
                except Exception as err:
                    # The weights are as after the last completed step: keep them, so that nothing is lost.
                    self.save()
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
                if loss_value is None:
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
                        "train", pos.global_step, loss=loss_value, lr=self.optimizer.param_groups[0]["lr"]
                    )
                    bar.set_postfix(loss=f"{loss_value:.3f}")
                pos.step, pos.global_step = index + 1, pos.global_step + 1
                steps_this_call += 1
                bar.update(1)
                if every and pos.global_step % every == 0 and pos.step < len(batches):
                    self.save()
                if self._stop_requested or (stop_after is not None and steps_this_call >= stop_after):
                    return True, steps_this_call
        finally:
            bar.close()
        return False, steps_this_call

    def _train_step(self, batch: Any) -> float | None:
        """One optimizer step under the DSD constraint; None (and no update) if the loss or grads are not finite."""
        self.optimizer.zero_grad(set_to_none=True)
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]  # e.g. batch-norm statistics
        loss = self.task.loss(batch, self.device)
        if not torch.isfinite(loss):
            _restore(buffers)
            return None
        loss.backward()
        self.dsd.mask_gradients()
        clip = self.config.train.grad_clip or math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if not torch.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            _restore(buffers)
            return None
        self.optimizer.step()
        self.dsd.apply_masks()
        return float(loss.detach())

    def _evaluate(self, splits: list[str]) -> dict[str, dict[str, float]]:
        self.model.eval()
        with torch.no_grad():
            return {split: self.task.evaluate(split, self.device) for split in splits}

    def _finish_phase(self, log: MetricsLog) -> None:
        pos = self.position
        phase = self.schedule[pos.phase]
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
