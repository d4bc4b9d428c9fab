"""The paper's figures, drawn from what a finished run leaves on disk (no retraining, no model code).

- Figure 2: the weight distribution of one layer through DSD, five panels: (a) after dense training,
  (b) just after pruning (the kept weights: a gap around zero), (c) after sparse retraining, (d) at
  re-dense (the pruned weights back at exactly zero: a spike), (e) after re-dense training. Weights come
  from the ``phaseN-end.pt`` checkpoints and the masks from the sparse phase's checkpoint.
- Training curves: training loss and the first evaluation split's metric per epoch, from
  ``metrics.jsonl``, with the phase boundaries marked; DSD and its baselines on one axis.
- Per-layer sparsity: one bar per pruned tensor for each sparse phase, from ``results.json``.

matplotlib runs on the Agg backend (files only; no display needed).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from dsd_seq.core.schedule import SPARSE  # noqa: E402
from dsd_seq.experiments.report import load_results  # noqa: E402
from dsd_seq.safe_io import load_checkpoint_dict  # noqa: E402
from dsd_seq.training.metrics_log import read_metrics  # noqa: E402

PHASE_END_KEYS = ("dsd",)  # besides the weights: the masks Figure 2 draws

WEIGHT_FIGURE = "weight_distribution.png"
CURVES_FIGURE = "training_curves.png"
SPARSITY_FIGURE = "layer_sparsity.png"


class FigureError(ValueError):
    """A run that lacks what a figure needs; the message says which file and what to run."""


def choose_layer(masks: dict[str, torch.Tensor], pattern: str | None = None) -> str:
    """The largest pruned tensor whose name matches ``pattern`` (a glob); by default the largest
    recurrent (hidden-to-hidden) matrix, else the largest pruned tensor; the first in model order on a tie
    (a forward direction before its reverse)."""
    names = list(masks)
    if pattern is not None:
        matching = [n for n in names if fnmatch.fnmatch(n, pattern)]
        if not matching:
            raise FigureError(f"layer pattern {pattern!r} matches no pruned tensor; pruned: {names}")
    else:
        matching = [n for n in names if "weight_hh" in n] or names
    return max(matching, key=lambda n: masks[n].numel())


def _sparse_window(results: dict[str, Any], run_dir: Path) -> int:
    """0-based index of the first sparse phase, checked to follow a dense phase."""
    kinds = [row["kind"] for row in results["phases"]]
    if SPARSE not in kinds:
        raise FigureError(f"{run_dir}: no sparse phase finished yet; Figure 2 needs dense, sparse (re-dense)")
    index = kinds.index(SPARSE)
    if index == 0:
        raise FigureError(f"{run_dir}: the schedule starts sparse; Figure 2 needs a dense phase first")
    return index


def weight_panels(
    run_dir: str | Path, layer: str | None = None, dense_start: Path | None = None
) -> tuple[str, list[tuple[str, torch.Tensor | None]]]:
    """The chosen layer's name and the five panels' (title, weight values) of Figure 2; (e) is None
    when the run has no re-dense phase (yet). ``dense_start``: the dense phase's end when the run
    started from it (``--init-from``, e.g. compare's shared baseline) and so holds no copy."""
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    sparse = _sparse_window(results, run_dir)
    ckpt = run_dir / "checkpoints"
    dense_path = ckpt / f"phase{sparse}-end.pt"
    if not dense_path.is_file() and dense_start is not None and dense_start.name == dense_path.name:
        dense_path = dense_start
    dense_state = load_checkpoint_dict(dense_path, needs=PHASE_END_KEYS)
    sparse_state = load_checkpoint_dict(ckpt / f"phase{sparse + 1}-end.pt", needs=PHASE_END_KEYS)
    redense_path = ckpt / f"phase{sparse + 2}-end.pt"
    redense_state = (
        load_checkpoint_dict(redense_path, needs=PHASE_END_KEYS) if redense_path.is_file() else None
    )
    masks = sparse_state["dsd"]["masks"]
    if not masks:
        raise FigureError(f"{ckpt / f'phase{sparse + 1}-end.pt'} holds no masks")
    name = choose_layer(masks, layer)
    mask = masks[name].reshape(-1)
    dense = dense_state["model"][name].reshape(-1).float()
    retrained = sparse_state["model"][name].reshape(-1).float()
    redensed = redense_state["model"][name].reshape(-1).float() if redense_state is not None else None
    pruned_fraction = 1.0 - float(mask.float().mean())
    panels = [
        ("(a) after dense training", dense),
        (f"(b) just after pruning ({100 * pruned_fraction:.0f}% pruned)", dense[mask]),
        ("(c) after sparse retraining", retrained[mask]),
        ("(d) re-dense: pruned weights restart at 0", retrained),
        ("(e) after re-dense training", redensed),
    ]
    return name, panels


def weight_distribution_figure(
    run_dir: str | Path, out: str | Path, layer: str | None = None, dense_start: Path | None = None
) -> Path:
    """Figure 2 of the paper for one layer of a DSD run; returns the PNG path."""
    name, panels = weight_panels(run_dir, layer, dense_start)
    present = [v for _, v in panels if v is not None and v.numel()]
    limit = max(float(v.abs().max()) for v in present) or 1.0
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.6), sharex=True)
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.set_title(title, fontsize=10)
        if values is None:
            ax.text(
                0.5, 0.5, "no re-dense phase\nin this run", ha="center", va="center", transform=ax.transAxes
            )
            continue
        ax.hist(values.numpy(), bins=121, range=(-limit, limit), color="#3060a0")
        ax.set_xlabel("weight value")
        zeros = int((values == 0).sum())
        ax.text(0.98, 0.95, f"n={values.numel():,}\nzeros={zeros:,}", ha="right", va="top",
                transform=ax.transAxes, fontsize=8)  # fmt: skip
    axes[0].set_ylabel("count")
    fig.suptitle(f"Weight distribution of {name} ({panels[0][1].numel():,} weights) through DSD", fontsize=11)
    fig.tight_layout()
    return _save(fig, out)


def _epoch_points(run_dir: Path, metric: str) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(cumulative epoch, mean training loss) and (cumulative epoch, first-split metric) of one run; a
    resumed run may have logged a step or epoch twice: the last record counts."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FigureError(f"{path} does not exist: train the run first")
    results = load_results(run_dir)
    offset = {row["phase"]: row["cumulative_epochs"] - row["epochs"] for row in results["phases"]}
    records = read_metrics(path)
    losses = {r["step"]: r["loss"] for r in records if r["event"] == "train"}
    epochs: dict[tuple[int, int], dict] = {}
    for r in records:
        if r["event"] == "epoch":
            epochs[(r["phase"], r["epoch"])] = r
    loss_points, metric_points = [], []
    previous_step = None
    for (phase, epoch), r in sorted(epochs.items()):
        if phase not in offset:
            continue
        x = offset[phase] + epoch
        start = previous_step if previous_step is not None else min(losses, default=r["step"])
        in_epoch = [v for s, v in losses.items() if start <= s < r["step"]]
        if in_epoch:
            loss_points.append((x, sum(in_epoch) / len(in_epoch)))
        value = next((v for k, v in r.items() if k.endswith(f"_{metric}")), None)
        if value is not None:
            metric_points.append((x, value))
        previous_step = r["step"]
    return loss_points, metric_points


def _joined(reference: list[tuple[int, float]], points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if not points or points[0] in reference:
        return points
    return [p for p in reference if p[0] == points[0][0] - 1] + points


def training_curves_figure(runs: dict[str, str | Path], out: str | Path) -> Path:
    """Loss and the dev metric per epoch for each run (label -> run folder), phase ends marked from the
    first run's results."""
    runs = {label: Path(d) for label, d in runs.items()}
    first = load_results(next(iter(runs.values())))
    metric = first.get("metric", "")
    fig, (loss_ax, metric_ax) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    curves = {label: _epoch_points(run_dir, metric) for label, run_dir in runs.items()}
    reference = next(iter(curves.values()))
    for label, (loss_points, metric_points) in curves.items():
        # a baseline's log starts after the phases it shares: join its line to the first run's
        loss_points = _joined(reference[0], loss_points)
        metric_points = _joined(reference[1], metric_points)
        if loss_points:
            loss_ax.plot(*zip(*loss_points, strict=True), marker="o", markersize=3, label=label)
        if metric_points:
            metric_ax.plot(*zip(*metric_points, strict=True), marker="o", markersize=3, label=label)
    for ax in (loss_ax, metric_ax):
        for row in first["phases"][:-1]:
            ax.axvline(row["cumulative_epochs"], color="grey", linestyle="--", linewidth=0.8)
        ax.legend(fontsize=8)
    for row in first["phases"]:
        loss_ax.annotate(row["label"], (row["cumulative_epochs"] - row["epochs"] / 2, 1.0),
                         xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8)  # fmt: skip
    loss_ax.set_ylabel("training loss (epoch mean)")
    direction = {True: " (higher is better)", False: " (lower is better)"}.get(
        first.get("higher_is_better"), ""
    )
    metric_ax.set_ylabel(f"{metric}{direction}")
    metric_ax.set_xlabel("epoch")
    fig.suptitle("Training curves; dashed lines: phase boundaries", fontsize=11, y=0.995)
    fig.tight_layout()
    return _save(fig, out)


def layer_sparsity_figure(run_dir: str | Path, out: str | Path) -> Path:
    """Measured sparsity of every pruned tensor at the end of each sparse phase."""
    run_dir = Path(run_dir)
    rows = [row for row in load_results(run_dir)["phases"] if row["kind"] == SPARSE]
    if not rows:
        raise FigureError(f"{run_dir}: no sparse phase finished yet; nothing to show per layer")
    names = list(rows[0]["layer_sparsity"])
    height = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * len(names) * max(1, len(rows) * 0.6)))
    for i, row in enumerate(rows):
        ys = [j + i * height for j in range(len(names))]
        values = [100 * row["layer_sparsity"].get(n, 0.0) for n in names]
        ax.barh(
            ys, values, height=height, label=f"{row['label']} (target {100 * row['target_sparsity']:.0f}%)"
        )
    ax.set_yticks([j + height * (len(rows) - 1) / 2 for j in range(len(names))], names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("sparsity (% of weights exactly zero)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Per-layer sparsity at the end of each sparse phase", fontsize=11)
    fig.tight_layout()
    return _save(fig, out)


def _save(fig, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
