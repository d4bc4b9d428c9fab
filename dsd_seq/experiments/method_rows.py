"""DSD against the methods it is weighed against (``compare --arms``: gradual pruning, RigL, SET, AC/DC),
in the two shapes their models come in:

- sparse models at equal sparsity: DSD's (last) sparse phase, the gradual, RigL and SET arms' final
  models and AC/DC's compressed end, each against DSD's sparse model;
- models of the dense architecture: DSD's final model, AC/DC's last decompressed phase, the fine-tuning
  control (LLR), the final-LR control and the early-stopped dense model, each against DSD's final model.

Each row says the epochs and the sparsity its model was trained to; Welch's unpaired t-test, as the main
table's, between seeds (runs of a shared baseline count as seeds here). A sparse model from fewer epochs
than another is marked by the epochs column, not hidden: DSD's sparse phase ends before DSD does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dsd_seq.core.schedule import DENSE, SPARSE
from dsd_seq.experiments.report import other_model_score
from dsd_seq.experiments.significance import Sample, compare

#: the method arms and the DSD-side kinds the section reads, with how they are named
METHOD_KINDS = ("gmp", "rigl", "set", "acdc")

Reader = Callable[[dict[str, Any]], "tuple[float | None, dict | None]"]


def _phase_reader(split: str, metric: str, pick: Callable[[list[dict]], int | None]) -> Reader:
    """Reads a record's score at the phase ``pick`` chooses (None: the record has no such phase)."""

    def read(record: dict[str, Any]) -> tuple[float | None, dict | None]:
        phases = record["phases"]
        index = pick(phases)
        if index is None or not -len(phases) <= index < len(phases):
            return None, None
        row = phases[index]
        return row["metrics"].get(split, {}).get(metric), row

    return read


def _last_of_kind(kind: str) -> Callable[[list[dict]], int | None]:
    def pick(phases: list[dict]) -> int | None:
        found = [i for i, row in enumerate(phases) if row["kind"] == kind]
        return found[-1] if found else None

    return pick


def _row(name: str, records: list[dict], read: Reader) -> dict[str, Any] | None:
    pairs = [read(r) for r in records]
    values = [v for v, _ in pairs if v is not None]
    if not values:
        return None
    rows = [row for v, row in pairs if v is not None and row is not None]
    epochs = sorted({row["cumulative_epochs"] for row in rows})
    sparsity = sorted({round(float(row.get("target_sparsity", 0.0)), 6) for row in rows})
    return {"model": name, "values": values, "epochs": epochs, "sparsity": sparsity}


def build_method_rows(
    by_kind: dict[str, list[dict[str, Any]]], labels: dict[str, str], split: str, metric: str, higher: bool
) -> dict[str, Any] | None:
    """The two sections as a JSON-able dict; None when no method arm ran."""
    if not any(by_kind.get(kind) for kind in METHOD_KINDS):
        return None
    final = _phase_reader(split, metric, lambda phases: len(phases) - 1)
    dsd = by_kind.get("dsd", [])
    sparse = [
        _row("DSD sparse phase", dsd, _phase_reader(split, metric, _last_of_kind(SPARSE))),
        *(_row(labels[k] if k != "acdc" else "AC/DC sparse end", by_kind.get(k, []), final) for k in METHOD_KINDS),
    ]  # fmt: skip

    def early_stopped(record: dict[str, Any]) -> tuple[float | None, dict | None]:
        """The dense phase's dev-selected epoch (recorded since runs kept their best epochs)."""
        row = record["phases"][0]
        if not isinstance(row.get("best"), dict):
            return None, None
        return other_model_score(row, "best", split, metric), {
            **row,
            "cumulative_epochs": row["best"]["epoch"],
        }

    dense = [
        _row("DSD", dsd, final),
        _row("AC/DC dense end", by_kind.get("acdc", []), _phase_reader(split, metric, _last_of_kind(DENSE))),
        _row(f"{labels.get('llr', 'LLR')} (fine-tuning)", by_kind.get("llr", []), final),
        _row(labels.get("final_lr", "Final-LR"), by_kind.get("final_lr", []), final),
        _row("Early-stopped dense", dsd, early_stopped),
    ]
    out = {}
    for key, rows in (("sparse", sparse), ("dense", dense)):
        rows = [r for r in rows if r is not None]
        if not rows:
            continue
        reference, others = rows[0], rows[1:]
        out[key] = {
            "models": [
                {
                    "model": r["model"], "epochs": r["epochs"], "sparsity": r["sparsity"],
                    "mean": Sample(tuple(r["values"])).mean, "std": Sample(tuple(r["values"])).std,
                    "n": len(r["values"]),
                }
                for r in rows
            ],
            "comparisons": [
                compare(r["model"], r["values"], reference["model"], reference["values"], higher).to_dict()
                for r in others
            ],
        }  # fmt: skip
    return out


def method_rows_markdown(section: dict[str, Any] | None, name: str, direction: str, fmt) -> list[str]:
    """The sections' markdown lines (none without a method arm); ``fmt`` formats numbers."""
    if not section:
        return []
    titles = {
        "sparse": "Sparse models at equal sparsity: DSD's sparse phase against gradual pruning, RigL, SET and "
        "AC/DC's compressed end",
        "dense": "Models of the dense architecture: DSD against AC/DC's decompressed end, fine-tuning and the "
        "early-stopped dense model",
    }
    lines: list[str] = []
    for key, part in section.items():
        lines += [
            "",
            f"## {titles[key]}",
            "",
            f"| Model | Epochs | Sparsity | {name} mean ± std | n |",
            "|---|---|---|---|---|",
        ]
        for m in part["models"]:
            epochs = "/".join(map(str, m["epochs"]))
            sparsity = "/".join(f"{s:g}" for s in m["sparsity"])
            lines.append(
                f"| {m['model']} | {epochs} | {sparsity} | {fmt['mean_std'](m['mean'], m['std'])} | {m['n']} |"
            )
        lines += [
            "",
            "| Comparison | Mean ± std | Baseline | n | Abs. improvement | t | df | p-value |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in part["comparisons"]:
            lines.append(
                f"| {c['method']} vs {c['baseline']} | {fmt['mean_std'](c['method_mean'], c['method_std'])} "
                f"| {fmt['mean_std'](c['baseline_mean'], c['baseline_std'])} | {c['method_n']} / {c['baseline_n']} "
                f"| {fmt['number'](c['improvement'], '+.2f')} | {fmt['number'](c['t'], '.3f')} "
                f"| {fmt['number'](c['df'], '.1f')} | {fmt['number'](c['p_value'], '.4f')} |"
            )
    lines += [
        "",
        f"Improvement is positive when the first model is better ({direction}); Welch's unpaired two-sided "
        "t-test. Epochs: the cumulative epochs the model trained (the early-stopped dense model: its dense-"
        "phase epoch); sparsity: the target of its phase (0: dense).",
    ]
    return lines
