"""Finish what a phase end left half done, from what is on disk.

A phase end is three writes: the step file (the state after the phase), its ``phaseN-end.pt`` and
``last.pt`` links, then ``results.json``; a phase's dev-selected epoch is two, its step file and its
``phaseN-best.pt`` link. A crash between them leaves a run whose state is complete but
whose names are not: without ``phaseN-end.pt`` the LLR baseline and reports cannot start, and rotation
would later delete the only file holding that state; without the last ``results.json`` row a rerun
exits 0 with a table that lacks the last phase. Every resumed start calls :func:`complete_phase_end`
with the checkpoint it continues from, before any new save, so doing it again is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dsd_seq.training.checkpoint_dir import CheckpointDir
from dsd_seq.training.results import RESULTS_NAME


def phase_end_of(state: dict[str, Any]) -> int | None:
    """The phase (counted from 1) whose end ``state`` is, or None. Checkpoints written before the
    ``phase_end`` key existed are recognized by their position: a phase done, the next not begun."""
    if "phase_end" in state:
        return state["phase_end"]
    pos = state.get("position", {})
    done = pos.get("phase", 0)
    at_start = not pos.get("entered") and not pos.get("epoch") and not pos.get("step")
    return done if done and at_start and len(state.get("results", [])) == done else None


def complete_phase_end(
    checkpoint_dir: CheckpointDir,
    source: Path,
    state: dict[str, Any],
    exp_dir: Path,
    write_results: Callable[[list[dict]], Path],
) -> list[str]:
    """Make the names and ``results.json`` agree with ``state`` (read from ``source``); returns what was
    repaired, for the log."""
    repaired = []
    phase = phase_end_of(state)
    if phase is not None and not checkpoint_dir.phase_end_path(phase).is_file():
        repaired.append(f"linked {checkpoint_dir.link_phase_end(source, phase).name}")
    kept = []  # a phase's dev-selected epoch (phaseN-best.pt), an epoch kept for averaging (phaseN-epochE.pt)
    if state.get("best_of") is not None:
        kept.append(checkpoint_dir.best_path(state["best_of"]))
    if state.get("epoch_of") is not None:
        kept.append(checkpoint_dir.epoch_path(*state["epoch_of"]))
    for target in kept:
        if checkpoint_dir.link_unless_same(source, target) is not None:
            repaired.append(f"linked {target.name}")
    if source.name != checkpoint_dir.last.name:
        checkpoint_dir.link_last(source)
    rows = list(state.get("results", []))
    if rows and _saved_rows(exp_dir / RESULTS_NAME) != rows:
        write_results(rows)
        repaired.append(f"rewrote {RESULTS_NAME} ({len(rows)} phase rows)")
    return repaired


def _saved_rows(path: Path) -> list | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["phases"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
