"""The trainer's checkpoint side: what a checkpoint holds, and saving, loading and resuming it.

:class:`TrainerCheckpoints` is a mixin of :class:`dsd_seq.training.trainer.Trainer`, kept apart so that
the trainer's file reads as the loop. It works on the trainer's attributes, listed in the class body.
A checkpoint holds the weights, the optimizer, the masks, the position, every random generator, the
finished phases' results, the schedule and the config (``CHECKPOINT_FORMAT``); the files themselves,
their rotation and links are :class:`~dsd_seq.training.checkpoint_dir.CheckpointDir`'s, and what a
crash left half done at a phase end is finished by :mod:`dsd_seq.training.phase_completion`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from dsd_seq.core.dsd import DSD
from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import CheckpointError, load_checkpoint_dict
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
from dsd_seq.training.nonfinite_guard import NonfiniteGuard
from dsd_seq.training.phase_completion import complete_phase_end
from dsd_seq.training.position import Position
from dsd_seq.training.precision import Precision
from dsd_seq.training.results import write_results
from dsd_seq.training.task import Task


class TrainerCheckpoints:
    """Saving, loading and resuming a trainer's state; the trainer sets these attributes."""

    task: Task
    schedule: Schedule
    config: RunConfig
    run_label: str
    exp_dir: Path
    checkpoint_dir: CheckpointDir
    rank: int
    world_size: int
    is_main: bool
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    dsd: DSD
    precision: Precision
    position: Position
    results: list[dict[str, Any]]
    nonfinite_total: int
    nonfinite: NonfiniteGuard
    resumed_from: Path | None
    skipped_checkpoints: list[tuple[Path, str]]  # (file, why) found unreadable on resume
    started_from: str | None  # the checkpoint a continuation started from (--init-from), kept on resume

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
            "started_from": self.started_from,
        }

    def save(
        self,
        phase_end: int | None = None,
        collective: bool = True,
        best_of: int | None = None,
        epoch_of: tuple[int, int] | None = None,
    ) -> Path:
        """Checkpoint the position (and mark it as the end of phase ``phase_end``, and as the dev-selected
        epoch of phase ``best_of``: ``phase<best_of>-best.pt``; ``epoch_of``: (phase, epoch) to keep as
        ``phase<N>-epoch<E>.pt`` for averaging).

        Under torchrun every rank calls this (``collective``): the ranks' RNG states are gathered so that
        a resumed run continues each rank's random stream; rank 0 alone writes. A save after a failed
        step is not collective (the other ranks may be blocked elsewhere) and keeps rank 0's RNG only."""
        rngs = distributed.gather_objects(rng_state()) if collective and self.world_size > 1 else None
        if not self.is_main:
            return self.checkpoint_dir.step_path(self.position.global_step)
        state = self.state_dict()
        if phase_end is not None:
            state["phase_end"] = phase_end  # what a start after a crash finishes (phase_completion)
        if best_of is not None:
            state["best_of"] = best_of  # what a start after a crash links, if the crash came first
        if epoch_of is not None:
            state["epoch_of"] = list(epoch_of)  # likewise: phaseN-epochE.pt, kept for averaging
        if rngs is not None:
            state["rng_ranks"] = rngs
        return self.checkpoint_dir.write(state, self.position.global_step, phase_end, best_of, epoch_of)

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
        self.started_from = str(Path(path).resolve()) if continue_schedule else state.get("started_from")

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

    def _write_results(self, rows: list[dict[str, Any]]) -> Path:
        """``results.json`` with ``rows``, named by the run's label and its optimizer-state policy."""
        policy = {
            "at_phase": self.config.train.optimizer_state_at_phase,
            "redense": self.config.train.redense_state,
        }
        return write_results(
            self.exp_dir,
            self.run_label,
            self.schedule,
            self.task,
            rows,
            optimizer_state=policy,
            started_from=self.started_from,
        )
