"""``dsd-seq average``: one checkpoint from a finished phase's last or best N epochs (the run kept them
because ``train.average`` was set; :mod:`dsd_seq.training.checkpoint_average` holds the rules and the
arithmetic)."""

from __future__ import annotations

import json
from pathlib import Path

from dsd_seq.safe_io import load_checkpoint_dict, save_checkpoint
from dsd_seq.training.checkpoint_average import AverageError, apply_state_masks, average_states, chosen_epochs
from dsd_seq.training.checkpoint_dir import CheckpointDir


def average_run(
    run_dir: str | Path, phase: int, how: str, count: int, out: str | Path | None = None
) -> tuple[Path, list[int]]:
    """Average ``how`` (last/best) ``count`` epochs of ``phase`` (counted from 1) of the run in
    ``run_dir`` into one checkpoint (the phase end's state with the averaged weights); returns the file
    written (default ``checkpoints/phase<N>-avg-<how><count>.pt``) and the epochs averaged."""
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
        rows = results["phases"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AverageError(
            f"{results_path}: cannot read the run's phases ({err}); is {run_dir} a run?"
        ) from None
    if not 1 <= phase <= len(rows):
        raise AverageError(
            f"--phase {phase}: {run_dir} has finished {len(rows)} phase(s); choose 1..{len(rows)}"
        )
    try:
        row = rows[phase - 1]
        last = int(row["epochs"])
        best = row.get("best") or {}
        monitor = str(best.get("monitor", "dev_loss")).partition("_")[2]
        values = [None if v is None else float(v) for v in (row.get("monitor_values") or [None] * last)]
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise AverageError(
            f"{results_path}: phase {phase}'s row is damaged ({type(err).__name__}: {err}); re-run the training "
            "stage with --resume, which rewrites it"
        ) from None
    higher = monitor == results.get("metric") and bool(results.get("higher_is_better"))
    epochs = chosen_epochs(how, count, values, higher)
    folder = CheckpointDir(run_dir / "checkpoints", keep=1)
    if last in epochs and row.get("handover") == "best" and best.get("epoch") != last:
        raise AverageError(
            f"phase {phase} handed on its best epoch, so {folder.phase_end_path(phase)} does not hold its last "
            "epoch; average other epochs (--best), or train with train.handover=last"
        )
    paths = [folder.phase_end_path(phase) if e == last else folder.epoch_path(phase, e) for e in epochs]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise AverageError(
            f"{', '.join(p.name for p in missing)} not in {folder.folder}: only the epochs a run kept can be "
            "averaged; train with train.average=last:N or best:N, which keeps each epoch's checkpoint"
        )
    states = [load_checkpoint_dict(p, "epoch checkpoint") for p in paths]
    # the last chosen epoch's masks: a gradual or RigL/SET phase changes them while it trains (as the
    # in-training train.average does, which masks with the live, last epoch's masks)
    newest = states[epochs.index(max(epochs))]
    masks = (newest.get("dsd") or {}).get("masks") or {}
    averaged = apply_state_masks(average_states([s["model"] for s in states]), masks)
    end = states[epochs.index(last)] if last in epochs else load_checkpoint_dict(folder.phase_end_path(phase))
    target = Path(out) if out is not None else folder.folder / f"phase{phase}-avg-{how}{count}.pt"
    save_checkpoint(
        {**end, "model": averaged, "averaged": {"phase": phase, "rule": f"{how}:{count}", "epochs": epochs}},
        target,
    )
    return target, epochs
