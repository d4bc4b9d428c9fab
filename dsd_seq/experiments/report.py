"""Results tables in the shape of the paper's Tables 5, 7 and 9: one row per phase, then the LLR baseline.

The LLR rows sit at the same cumulative epochs as the DSD rows, so each DSD row has its equal-epoch
control beside it. Without that control a gain is not a gain: in an early 3-seed trial on the synthetic
captions, DSD (dense 20 epochs, sparse 80% for 8, re-dense 8 at LR/10) ended at test BLEU-4 49.4 ± 0.8 and a
control trained on from the same dense checkpoint for the same epochs and the same LR drop at 49.4 ± 1.8:
DSD's apparent gain over the dense checkpoint came from the extra epochs and the lower learning rate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_results(exp_dir: str | Path) -> dict[str, Any]:
    path = Path(exp_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the training stage for {exp_dir} first")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); re-run the training stage with --resume"
        ) from None
    problem = _results_problem(results)
    if problem:
        raise ValueError(
            f"{path} is not a run's results ({problem}); re-run the training stage with --resume, which "
            "rewrites it from the checkpoints"
        )
    return results


def _results_problem(results: Any) -> str | None:
    """What makes ``results`` unlike the file the trainer writes, or None."""
    if not isinstance(results, dict):
        return f"a JSON {type(results).__name__}, not an object"
    phases = results.get("phases")
    if not isinstance(phases, list):
        return "no list of phases under 'phases'"
    for i, row in enumerate(phases):
        if not isinstance(row, dict):
            return f"phases[{i}] is not an object"
        for key, kind in (("metrics", dict), ("label", str), ("epochs", int), ("cumulative_epochs", int)):
            if not isinstance(row.get(key), kind):
                return f"phases[{i}].{key} is missing or not {kind.__name__}"
        for split, values in row["metrics"].items():
            if not isinstance(values, dict) or not all(
                v is None or isinstance(v, int | float) for v in values.values()
            ):
                return f"phases[{i}].metrics.{split} is not a mapping of names to numbers"
    return None


def _metric_columns(rows: list[dict]) -> list[tuple[str, str]]:
    columns: list[tuple[str, str]] = []
    for row in rows:
        for split, values in row["metrics"].items():
            for name in values:
                if (split, name) not in columns:
                    columns.append((split, name))
    return columns


def build_table(dsd: dict[str, Any], baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rows for the DSD run and (optionally) its LLR baseline, with the change against the first dense
    phase on the main metric of the test split (e.g. test WER). The change is ``value - dense``; its
    column says whether higher (BLEU) or lower (WER) is better, from the task's ``higher_is_better``."""
    metric = dsd.get("metric", "")
    run = dsd.get("run", "DSD")
    rows = []
    for row in dsd["phases"]:
        rows.append(
            {"run": run, **row, **({"label": "Dense (LLR)"} if run == "LLR" and row["phase"] else {})}
        )
    if baseline:
        for row in baseline["phases"]:
            if row["phase"] == 0 and dsd["phases"] and row["metrics"] == dsd["phases"][0]["metrics"]:
                continue  # the shared dense phase is already listed
            rows.append({"run": "LLR", **row, "label": "Dense (LLR)"})
    columns = _metric_columns(rows)
    splits = [split for split, _ in columns]
    main_split = "test" if "test" in splits else (splits[-1] if splits else None)
    reference = dsd["phases"][0]["metrics"].get(main_split, {}).get(metric) if dsd["phases"] else None
    for row in rows:
        value = row["metrics"].get(main_split, {}).get(metric)
        row["change_vs_dense"] = None if value is None or reference is None else value - reference
        row["dev_selected"] = _other_model(row, "best", ("epoch", "monitor"), main_split, metric)
        row["averaged"] = _other_model(row, "average", ("rule", "epochs"), main_split, metric)
    return {
        "schedule": dsd.get("schedule"),
        "baseline_schedule": baseline.get("schedule") if baseline else None,
        "metric": metric,
        "higher_is_better": dsd.get("higher_is_better"),
        "main_split": main_split,
        "columns": [f"{split} {name}" for split, name in columns],
        "rows": rows,
    }


def other_model_score(row: dict, key: str, split: str | None, metric: str) -> float | None:
    """The ``split``/``metric`` score of a phase row's other model (``best``: its dev-selected epoch,
    ``average``: its averaged model, ``last``: its last epoch when it handed on the best); None when the
    row has none."""
    entry = row.get(key) if isinstance(row.get(key), dict) else None
    return None if entry is None else ((entry.get("metrics") or {}).get(split) or {}).get(metric)


def _other_model(row: dict, key: str, keep: tuple[str, ...], split: str | None, metric: str) -> dict | None:
    """A phase's other model: the fields ``keep`` and its score (:func:`other_model_score`); None when the
    row has none."""
    if not isinstance(row.get(key), dict):
        return None
    return {**{k: row[key].get(k) for k in keep}, "value": other_model_score(row, key, split, metric)}


#: The results table's columns of a phase's other models: the row's key, the heading, the heading of its
#: score (after the metric's name), and how the model is named in its cell.
OTHER_COLUMNS = (
    ("dev_selected", "Dev-selected epoch", "there", lambda m: f"{m['epoch']} ({m['monitor']})"),
    ("averaged", "Averaged epochs", "averaged", lambda m: f"{m['rule']}: {', '.join(map(str, m['epochs']))}"),
)


def to_markdown(table: dict[str, Any]) -> str:
    columns = table["columns"]
    header = ["Run", "Phase", "Epochs (total)", "LR", "Sparsity", *columns]
    if table["metric"]:
        direction = {True: " (higher is better)", False: " (lower is better)"}.get(
            table.get("higher_is_better"), ""
        )
        header.append(f"{table['main_split']} {table['metric']} vs Dense{direction}")
    # each phase's best dev epoch (phaseN-best.pt) and, with train.average, its averaged model
    others = [column for column in OTHER_COLUMNS if any(row.get(column[0]) for row in table["rows"])]
    for _, heading, score, _ in others:
        header += [heading, f"{table['main_split']} {table['metric']} {score}"]
    lines = [
        f"DSD schedule `{table['schedule']}`"
        + (f"; LLR baseline `{table['baseline_schedule']}`" if table["baseline_schedule"] else ""),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in table["rows"]:
        values = {f"{s} {n}": v for s, vals in row["metrics"].items() for n, v in vals.items()}
        cells = [
            row["run"],
            row["label"],
            f"{row['epochs']} ({row['cumulative_epochs']})",
            f"{row['lr']:g}",
            f"{100 * row['measured_sparsity']:.1f}%",
            *(f"{values[c]:.2f}" if c in values else "" for c in columns),
        ]
        if table["metric"]:
            change = row["change_vs_dense"]
            cells.append("" if change is None else f"{change:+.2f}")
        for key, _, _, name in others:
            model = row.get(key)
            value = None if model is None else model["value"]
            cells += ["" if model is None else name(model), "" if value is None else f"{value:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if any(column[0] == "dev_selected" for column in others):
        lines += [
            "",
            "Dev-selected epoch: the phase's epoch with the best monitored dev value (kept as "
            "`checkpoints/phaseN-best.pt`), and the test score there; the epoch was chosen on dev alone.",
        ]
    return "\n".join(lines) + "\n"


def write_report(
    dsd_dir: str | Path, baseline_dir: str | Path | None, out_prefix: str | Path
) -> tuple[Path, Path]:
    """Write ``<out_prefix>.md`` and ``<out_prefix>.json``; returns both paths."""
    table = build_table(load_results(dsd_dir), load_results(baseline_dir) if baseline_dir else None)
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    md, js = Path(f"{out_prefix}.md"), Path(f"{out_prefix}.json")
    md.write_text(to_markdown(table))
    js.write_text(json.dumps(table, indent=2) + "\n")
    return md, js
