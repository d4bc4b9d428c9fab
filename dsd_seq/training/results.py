"""A run's results: one row per finished phase, written to ``EXP_DIR/results.json`` after each phase.

The rows are what the paper's tables report per stage (Tables 5-9: the metric after each of Dense,
Sparse and Re-dense), with the sparsity measured on the weights, not just the target.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dsd_seq.core.convergence import Plateau
from dsd_seq.core.dsd import DSD
from dsd_seq.core.schedule import SPARSE, Schedule
from dsd_seq.safe_io import write_atomic
from dsd_seq.training.task import Task

RESULTS_NAME = "results.json"


def phase_row(
    schedule: Schedule,
    phase: int,
    dsd: DSD,
    metrics: dict[str, dict[str, float]],
    seconds: float,
    epochs_run: int | None = None,
    epochs_before: int | None = None,
    plateau: Plateau | None = None,
    environment: dict[str, Any] | None = None,
    best: dict[str, Any] | None = None,
    handover: str = "last",
    last: dict[str, Any] | None = None,
    average: dict[str, Any] | None = None,
    monitor_values: list[float | None] | None = None,
) -> dict[str, Any]:
    """The results row of phase ``phase`` (counted from 0), just finished, scored by ``metrics``.

    ``epochs`` is what the phase trained (``epochs_run``; the schedule's for a fixed phase) and
    ``cumulative_epochs`` adds the earlier phases' (``epochs_before``). A phase that ends at convergence
    also records its maximum, whether it converged before it, and the best monitored value (``plateau``).
    ``environment`` names the code that trained the phase (``dsd_seq.training.provenance``). ``best`` is
    the phase's dev-selected epoch (epoch, monitor, value, its scores on every split); ``metrics`` score
    the model the phase hands on (``handover``: its last epoch, or with "best" the selected one, when
    ``last`` keeps the last epoch's scores). ``average``: the averaged model's epochs and scores
    (``train.average``); ``monitor_values``: the monitored dev value after each epoch."""
    spec = schedule[phase]
    layers, total_sparsity = dsd.sparsity()
    epochs = spec.epochs if epochs_run is None else epochs_run
    before = sum(p.epochs for p in schedule.phases[:phase]) if epochs_before is None else epochs_before
    until = {}
    if spec.until is not None:
        until = {
            "max_epochs": spec.epochs,
            "converged": epochs < spec.epochs,
            "monitor": spec.until.monitor,
            "monitor_best": plateau.best if plateau is not None else None,
        }
    return {
        "phase": phase,
        "label": schedule.label(phase),
        "kind": spec.kind,
        "epochs": epochs,
        "cumulative_epochs": before + epochs,
        **until,
        "lr": spec.lr,
        "target_sparsity": spec.sparsity if spec.kind == SPARSE else 0.0,
        "measured_sparsity": total_sparsity,
        "layer_sparsity": {r.name: round(r.sparsity, 6) for r in layers},
        "metrics": metrics,
        "seconds": round(seconds, 2),
        **({"best": best} if best is not None else {}),
        "handover": handover,
        **({"last": last} if last is not None else {}),
        **({"average": average} if average is not None else {}),
        **({"monitor_values": monitor_values} if monitor_values is not None else {}),
        **({"environment": environment} if environment is not None else {}),
    }


def write_results(
    exp_dir: Path,
    run_label: str,
    schedule: Schedule,
    task: Task,
    rows: list[dict],
    optimizer_state: dict[str, str] | None = None,
    started_from: str | None = None,
) -> Path:
    """Replace ``results.json`` (atomically) with the rows so far; ``run_label`` names the run in tables
    ("DSD", "LLR", "Final-LR"), ``task`` its main metric, ``optimizer_state`` the policy that ran at
    phase boundaries (:mod:`dsd_seq.core.optimizer_state`), ``started_from`` the checkpoint a continuation
    started from (``--init-from``), whose run the store reads the earlier phases' training loss from."""
    summary = {
        "run": run_label,
        "schedule": schedule.compact(),
        **realized_schedule(schedule, rows),
        "metric": task.metric,
        "higher_is_better": bool(task.higher_is_better),
        "phases": rows,
    }
    if optimizer_state is not None:
        summary["optimizer_state"] = optimizer_state
    if started_from is not None:
        summary["started_from"] = started_from
    path = exp_dir / RESULTS_NAME
    summary, replaced = finite_json(summary)
    if replaced:  # JSON has no NaN: write null, and say where, rather than a file no JSON reader accepts
        tqdm.write(
            f"warning: {path}: non-finite values written as null at {', '.join(replaced[:5])}"
            f"{' ...' if len(replaced) > 5 else ''} (a split whose features or loss are NaN/inf: check its data)",
            file=sys.stderr,
        )
    write_atomic(path, (json.dumps(summary, indent=2, allow_nan=False) + "\n").encode())
    return path


def finite_json(value: Any, where: str = "") -> tuple[Any, list[str]]:
    """``value`` with every NaN/inf float replaced by None, and the places replaced (``phases[0].metrics...``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None, [where or "."]
    if isinstance(value, dict):
        out, replaced = {}, []
        for key, item in value.items():
            out[key], found = finite_json(item, f"{where}.{key}" if where else str(key))
            replaced += found
        return out, replaced
    if isinstance(value, list):
        pairs = [finite_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return [p[0] for p in pairs], [w for p in pairs for w in p[1]]
    return value, []


def flat_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{"dev": {"wer": 9.1}}`` -> ``{"dev_wer": 9.1}``, as the metrics log names them."""
    return {f"{split}_{name}": value for split, values in metrics.items() for name, value in values.items()}


def realized_schedule(schedule: Schedule, rows: list[dict]) -> dict[str, str]:
    """``{"realized_schedule": ...}``: the epochs phases that end at convergence actually ran (the
    equal-epoch baselines train these); empty for a schedule of fixed phases."""
    if not schedule.ends_at_convergence:
        return {}
    return {"realized_schedule": schedule.realized([row["epochs"] for row in rows]).compact()}


def realized_epochs(results_path: Path) -> list[int]:
    """The epochs each finished phase of a run trained, from its ``results.json``."""
    try:
        rows = json.loads(Path(results_path).read_text(encoding="utf-8"))["phases"]
        return [int(row["epochs"]) for row in rows]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{results_path}: cannot read the realized epochs per phase ({type(err).__name__}: {err}); it must "
            "be the results.json of a finished DSD run (train it first)"
        ) from None
