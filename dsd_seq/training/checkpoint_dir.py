"""The checkpoint folder of a run (``EXP_DIR/checkpoints``): what its files are named, which ones are
kept, and which one a resumed run starts from.

- ``step-<global step, 9 digits>.pt``: one per save; the newest ``train.keep_checkpoints`` are kept.
- ``phaseN-end.pt``: the state after phase N, kept for good (the LLR baseline and reports start there).
- ``phaseN-best.pt``: the state after phase N's dev-selected epoch (:mod:`dsd_seq.training.dev_selection`),
  kept for good: the model a practitioner would keep.
- ``phaseN-epochE.pt``: the state after each epoch E of phase N, kept for checkpoint averaging when
  ``train.average`` is set (:mod:`dsd_seq.training.checkpoint_average`).
- ``last.pt``: the newest save.

All but the step files are hard links to a step file (no copy, no extra disk), swapped in atomically, so every
name is complete or absent whatever moment a crash comes. Only names of exactly these forms count:
``step-000000010 copy 2.pt`` is somebody's copy, not a checkpoint.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dsd_seq.safe_io import CheckpointError, kill_point, load_checkpoint_dict, save_checkpoint
from dsd_seq.training.checkpoint import RESUME_KEYS

_STEP = re.compile(r"step-(\d{9,})\.pt")
_PHASE_END = re.compile(r"phase(\d+)-end\.pt")
LAST = "last.pt"


class CheckpointDir:
    """A run's checkpoint folder; ``keep`` recent step checkpoints survive each save."""

    def __init__(self, folder: str | Path, keep: int):
        self.folder = Path(folder)
        self.keep = keep

    @property
    def last(self) -> Path:
        return self.folder / LAST

    def step_path(self, global_step: int) -> Path:
        return self.folder / f"step-{global_step:09d}.pt"

    def phase_end_path(self, phase: int) -> Path:
        """The checkpoint after ``phase`` phases (counted from 1)."""
        return self.folder / f"phase{phase}-end.pt"

    def epoch_path(self, phase: int, epoch: int) -> Path:
        """The checkpoint after ``epoch`` of ``phase`` (both counted from 1), kept for averaging."""
        return self.folder / f"phase{phase}-epoch{epoch}.pt"

    def best_path(self, phase: int) -> Path:
        """The checkpoint of ``phase``'s dev-selected epoch (``phase`` counted from 1)."""
        return self.folder / f"phase{phase}-best.pt"

    def write(
        self,
        state: dict[str, Any],
        global_step: int,
        phase_end: int | None = None,
        best_of: int | None = None,
        epoch_of: tuple[int, int] | None = None,
    ) -> Path:
        """Save ``state`` as the step file, link ``last.pt`` (and ``phase<phase_end>-end.pt``,
        ``phase<best_of>-best.pt`` when it is that phase's dev-selected epoch, ``phase<N>-epoch<E>.pt`` for
        ``epoch_of`` = (N, E)) to it, then drop step files beyond the newest ``keep``."""
        path = self.step_path(global_step)
        save_checkpoint(state, path)
        if phase_end is not None:
            kill_point("phase-end-saved")  # crash window: the step file holds a phase end not yet linked
            _link_atomic(path, self.phase_end_path(phase_end))
        if best_of is not None:
            kill_point("best-saved")  # crash window: the step file holds the best epoch, not yet linked
            _link_atomic(path, self.best_path(best_of))
        if epoch_of is not None:
            _link_atomic(path, self.epoch_path(*epoch_of))
        _link_atomic(path, self.last)
        for old in self.steps()[self.keep :]:
            old.unlink(missing_ok=True)
        return path

    def link_phase_end(self, source: Path, phase: int) -> Path:
        """Name ``source`` (a checkpoint holding the end of ``phase``) ``phase<phase>-end.pt``."""
        target = self.phase_end_path(phase)
        _link_atomic(source, target)
        return target

    def link_unless_same(self, source: Path, target: Path) -> Path | None:
        """Name ``source`` ``target`` (``best_path``, ``epoch_path``) unless it already is; returns the
        name when linked."""
        if target.is_file() and os.path.samefile(source, target):
            return None
        _link_atomic(source, target)
        return target

    def link_last(self, source: Path) -> None:
        if not (self.last.is_file() and os.path.samefile(source, self.last)):
            _link_atomic(source, self.last)

    def steps(self) -> list[Path]:
        """The step checkpoints, newest (highest global step) first."""
        return _numbered(self.folder, _STEP)

    def newest_first(self) -> list[Path]:
        """Every checkpoint, the order a resumed run tries them: step files, last.pt, then phase ends."""
        last = [self.last] if self.last.is_file() else []
        return self.steps() + last + _numbered(self.folder, _PHASE_END)

    def remove_stale_temporaries(self) -> None:
        """Drop ``.*.tmp`` files: writes a crash cut short (never a checkpoint)."""
        for stale in self.folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)

    def newest_valid(self, rename_damaged: bool = True) -> tuple[Path, dict, list[tuple[Path, str]]] | None:
        """The newest checkpoint that loads and passes its checksum, its state, and the newer ones skipped
        as ``(file, why)``; None when the folder holds none. Skipped files are renamed ``*.corrupt`` when
        ``rename_damaged`` (under torchrun rank 0 alone renames; the other ranks look afterwards)."""
        skipped: list[tuple[Path, str]] = []
        for path in self.newest_first():
            try:
                state = load_checkpoint_dict(path, needs=RESUME_KEYS)  # 0-byte, foreign: skipped
            except CheckpointError as err:
                skipped.append((path, str(err)))
                if rename_damaged:
                    tqdm.write(f"resume: skipping {path}: {err}")
                    path.rename(path.with_name(path.name + ".corrupt"))
                continue
            return path, state, skipped
        if skipped:
            raise CheckpointError(
                f"{self.folder}: no readable checkpoint; all {len(skipped)} were damaged (kept as *.corrupt). "
                "Start again in a new --exp-dir, or --init-from a phase-end checkpoint"
            )
        return None


def _numbered(folder: Path, pattern: re.Pattern) -> list[Path]:
    """Files of ``folder`` whose whole name matches ``pattern``, highest number first."""
    found = []
    for path in folder.glob("*.pt"):
        match = pattern.fullmatch(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def _link_atomic(source: Path, target: Path) -> None:
    """Make ``target`` name the same file as ``source`` (a hard link), replacing it atomically; a copy
    where the file system has no hard links."""
    tmp = target.with_name(f".{target.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
