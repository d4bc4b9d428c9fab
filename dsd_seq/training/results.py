"""A run's results: one row per finished phase, written to ``EXP_DIR/results.json`` after each phase.

The rows are what the paper's tables report per stage (Tables 5-9: the metric after each of Dense,
Sparse and Re-dense), with the sparsity measured on the weights, not just the target.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dsd_seq.core.dsd import DSD
from dsd_seq.core.schedule import SPARSE, Schedule
from dsd_seq.safe_io import write_atomic
from dsd_seq.training.task import Task

RESULTS_NAME = "results.json"


def phase_row(
    schedule: Schedule, phase: int, dsd: DSD, metrics: dict[str, dict[str, float]], seconds: float
) -> dict[str, Any]:
    """The results row of phase ``phase`` (counted from 0), just finished, scored by ``metrics``."""
    spec = schedule[phase]
    layers, total_sparsity = dsd.sparsity()
    return {
        "phase": phase,
        "label": schedule.label(phase),
        "kind": spec.kind,
        "epochs": spec.epochs,
        "cumulative_epochs": sum(p.epochs for p in schedule.phases[: phase + 1]),
        "lr": spec.lr,
        "target_sparsity": spec.sparsity if spec.kind == SPARSE else 0.0,
        "measured_sparsity": total_sparsity,
        "layer_sparsity": {r.name: round(r.sparsity, 6) for r in layers},
        "metrics": metrics,
        "seconds": round(seconds, 2),
    }


def write_results(exp_dir: Path, run_label: str, schedule: Schedule, task: Task, rows: list[dict]) -> Path:
    """Replace ``results.json`` (atomically) with the rows so far; ``run_label`` names the run in tables
    ("DSD", "LLR", "Fine-tune"), ``task`` its main metric."""
    summary = {
        "run": run_label,
        "schedule": schedule.compact(),
        "metric": task.metric,
        "higher_is_better": bool(task.higher_is_better),
        "phases": rows,
    }
    path = exp_dir / RESULTS_NAME
    write_atomic(path, (json.dumps(summary, indent=2) + "\n").encode())
    return path


def flat_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{"dev": {"wer": 9.1}}`` -> ``{"dev_wer": 9.1}``, as the metrics log names them."""
    return {f"{split}_{name}": value for split, values in metrics.items() for name, value in values.items()}
