"""DSD against its equal-epoch baselines over seeds, in the shape of the paper's Table 10 (Appendix A).

Built from run-store records (see ``run_store``) of one configuration: per stage the mean and standard
deviation over seeds of the main metric (e.g. test WER) for DSD, LLR and the final-LR control; then DSD's final
model against each baseline and against the dense model, and the sparse model alone against the dense
model, with absolute and relative improvement and Welch's unpaired t-test (``significance``). Kinds
with no record are left out. Beside them: the epochs each phase ran (phases may end at convergence, so
they differ between seeds), each stage's training loss (last epoch) against its dev loss, the fit that
decides whether there is anything to regularise, and the optimizer-state policy at phase boundaries. The records say which design ran (``compare.DESIGNS``): under
``shared-baseline`` every seed continues one dense model, so the dense side is that one model (n = 1).
"""

from __future__ import annotations

import json
from typing import Any

from dsd_seq.core.comparators import ARMS
from dsd_seq.core.schedule import SPARSE
from dsd_seq.experiments.method_rows import build_method_rows, method_rows_markdown
from dsd_seq.experiments.practitioner_baselines import build_practitioner_rows, practitioner_markdown
from dsd_seq.experiments.significance import Comparison, Sample, compare
from dsd_seq.experiments.units import (
    against_reference,
    between_arms,
    by_unit,
    describe_unit,
    run_name,
    several_baselines,
)

#: Run kinds in the store and how tables name them (after DSD's baselines, the methods of ``--arms``).
KIND_LABELS = {
    "dsd": "DSD",
    "llr": "LLR",
    "final_lr": "Final-LR",
    **{k: label for k, (label, _) in ARMS.items()},
}
#: How a report says which design ran (records without one were written by the per-seed design).
DESIGN_TEXT = {
    "per-seed": "per-seed: each seed trains its own dense phase and continues it as DSD and each baseline, "
    "so the spread includes the dense phase's",
    "shared-baseline": "shared-baseline (the paper's, Appendix A): one dense baseline trained once (seed 0), "
    "then every seed continues it as DSD and as LLR, the paper's fine-tuning control (the same learning "
    "rates without pruning), so the spread comes from retraining only",
    "shared-baselines": "shared-baseline with several dense baselines (`compare --baselines`): each dense "
    "baseline trained from its own seed, then every seed continues each as DSD and as LLR, the paper's "
    "fine-tuning control (the same learning rates without pruning); DSD against LLR is tested paired by "
    "baseline, so the variance includes the dense model's",
}


class ComparisonError(ValueError):
    """Records that cannot be compared (none, several configurations, no DSD run)."""


def select_experiment(records: list[dict[str, Any]], wanted_hash: str | None = None) -> list[dict[str, Any]]:
    """The records of one configuration: ``wanted_hash``, or the only one in the store."""
    hashes = sorted({r["config_hash"] for r in records})
    if wanted_hash is None:
        if len(hashes) > 1:
            raise ComparisonError(
                f"the run store holds {len(hashes)} configurations ({', '.join(hashes)}); pass --config "
                "(and the same --set options) to choose one"
            )
        wanted_hash = hashes[0] if hashes else None
    chosen = [r for r in records if r["config_hash"] == wanted_hash]
    if not chosen:
        raise ComparisonError(
            f"no finished run of configuration {wanted_hash} in the store (it holds {hashes or 'nothing'})"
        )
    return chosen


def _main_split(record: dict[str, Any]) -> str:
    splits = list(record["phases"][0]["metrics"])
    return "test" if "test" in splits else splits[-1]


def _value(record: dict[str, Any], phase: int | None, split: str, metric: str) -> float | None:
    """The score at phase ``phase`` (-1: the run's final phase; None or past the end: none)."""
    phases = record["phases"]
    if phase is None or phase >= len(phases):
        return None
    return phases[phase]["metrics"].get(split, {}).get(metric)


#: whether a larger value is better, for metrics a report may be built on other than the task's main one
METRIC_DIRECTIONS = {
    **{m: True for m in ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider_d")},
    **{m: False for m in ("wer", "cer", "loss")},
}


def _report_metric(reference: dict[str, Any], split: str, metric: str | None) -> tuple[str, bool]:
    """The metric the tables are built on (the task's main one unless ``metric`` names another recorded
    one) and whether higher is better."""
    if metric is None or metric == reference["metric"]:
        return reference["metric"], bool(reference["higher_is_better"])
    recorded = sorted(reference["phases"][0]["metrics"].get(split, {}))
    if metric not in recorded:
        raise ComparisonError(
            f"--metric {metric}: the runs recorded {', '.join(recorded)} on {split}; choose one of those"
        )
    if metric not in METRIC_DIRECTIONS:
        raise ComparisonError(
            f"--metric {metric}: its direction is unknown; known: {', '.join(METRIC_DIRECTIONS)}"
        )
    return metric, METRIC_DIRECTIONS[metric]


def _other_metrics(
    by_kind: dict[str, list[dict]], kinds: dict[str, str], last: int, split: str, metric: str, design: str
) -> dict[str, Any]:
    """Every other metric recorded on ``split``: mean, std and n per arm at the final phase, and of the
    dense phase (e.g. CIDEr-D and ROUGE-L beside a BLEU-4 comparison); a shared dense model counts once."""
    reference = by_kind["dsd"][0]
    names = [n for n in reference["phases"][0]["metrics"].get(split, {}) if n not in (metric, "loss")]
    dense = by_kind["dsd"]
    if design == "shared-baseline":  # every seed's phase 1 is its baseline's one model
        dense = list({r.get("baseline_seed"): r for r in reversed(dense)}.values())
    rows = {"Dense": dense, **{label: by_kind[kind] for kind, label in kinds.items()}}
    out: dict[str, Any] = {}
    for name in names:
        cells = {}
        for label, records in rows.items():
            phase = 0 if label == "Dense" else last
            found = [_value(r, phase, split, name) for r in records]
            sample = Sample(tuple(v for v in found if v is not None))
            cells[label] = {"mean": sample.mean, "std": sample.std, "n": sample.n}
        out[name] = cells
    return {"other_metrics": out} if out else {}


def build_comparison(records: list[dict[str, Any]], metric: str | None = None) -> dict[str, Any]:
    """The comparison tables (a JSON-able dict) from the records of one configuration, on the task's main
    metric or on ``metric``, another one the runs recorded."""
    by_kind: dict[str, list[dict]] = {kind: [] for kind in KIND_LABELS}
    for record in sorted(records, key=lambda r: r["seed"]):
        by_kind.setdefault(record["kind"], []).append(record)
    dsd_runs = by_kind["dsd"]
    if not dsd_runs:
        raise ComparisonError("no finished DSD run among the records; nothing to compare")
    designs = sorted({r.get("design", "per-seed") for r in records})
    if len(designs) > 1:
        raise ComparisonError(
            f"the records mix the designs {', '.join(designs)}; compare one design per --out folder"
        )
    layouts = {r.get("baseline_seed") is None for r in records if r.get("design") == "shared-baseline"}
    if len(layouts) > 1:
        raise ComparisonError(
            "the records mix one shared dense baseline with several (compare --baselines); compare each in "
            "its own --out folder"
        )
    kinds = {kind: label for kind, label in KIND_LABELS.items() if by_kind.get(kind)}
    reference = dsd_runs[0]
    split = _main_split(reference)
    metric, higher = _report_metric(reference, split, metric)
    phases = reference["phases"]
    last = len(phases) - 1
    sparse_phases = [i for i, row in enumerate(phases) if row["kind"] == SPARSE]

    def values(kind: str, phase: int) -> list[float]:
        """Each run's score at DSD's phase ``phase``: its final model at DSD's last; a run of another
        number of phases (AC/DC's alternation) at the phase ending at the same cumulative epochs."""
        found = (_value(r, _aligned(r, phase, phases, last), split, metric) for r in by_kind.get(kind, []))
        return [v for v in found if v is not None]

    stages = []
    for i, row in enumerate(phases):
        cells = {}
        for kind, label in kinds.items():
            sample = Sample(tuple(values(kind, i)))
            cells[label] = {"mean": sample.mean, "std": sample.std, "n": sample.n}
        realized = sorted({r["phases"][i]["cumulative_epochs"] for r in dsd_runs if i < len(r["phases"])})
        epochs = realized[0] if len(realized) == 1 else realized  # a range: phases ended at convergence
        stages.append({"label": row["label"], "cumulative_epochs": epochs, **cells})

    final, dense = values("dsd", last), values("dsd", 0)
    design = designs[0]
    several = several_baselines(records, design)

    def units(kind: str, phase: int) -> dict:
        return by_unit(
            by_kind.get(kind, []),
            design,
            lambda r: _value(r, _aligned(r, phase, phases, last), split, metric),
        )

    if several:  # one dense model per baseline, each paired with its own continuations
        dense_by_unit = {u: vs[0] for u, vs in units("dsd", 0).items()}
        comparisons: list[tuple[Comparison, bool]] = [
            (between_arms("DSD", units("dsd", last), label, units(kind, last), higher, design), True)
            for kind, label in kinds.items() if kind != "dsd"
        ]  # fmt: skip
        comparisons.append(
            (against_reference("DSD", units("dsd", last), "Dense", dense_by_unit, higher, design), False)
        )
        if sparse_phases:
            sparse = units("dsd", sparse_phases[-1])
            comparisons.append(
                (against_reference("Sparse alone", sparse, "Dense", dense_by_unit, higher, design), False)
            )
    else:
        if design == "shared-baseline":
            dense = dense[:1]  # every seed's phase 1 is the one shared model
        comparisons = [
            (compare("DSD", final, label, values(kind, last), higher), True) for kind, label in kinds.items() if kind != "dsd"
        ]  # fmt: skip
        comparisons.append((compare("DSD", final, "Dense", dense, higher), False))
        if sparse_phases:
            sparse = values("dsd", sparse_phases[-1])
            comparisons.append((compare("Sparse alone", sparse, "Dense", dense, higher), False))
    names = sorted({(r.get("baseline_seed") or 0, r["seed"], run_name(r)) for r in records})
    runs = {
        name: {
            "Dense": _value(_run(by_kind, "dsd", name), 0, split, metric),
            **({"Sparse": _value(_run(by_kind, "dsd", name), sparse_phases[-1], split, metric)} if sparse_phases else {}),
            **{label: _value(_run(by_kind, kind, name), -1, split, metric) for kind, label in kinds.items()},
        }
        for *_, name in names
    }  # fmt: skip
    per_seed = sorted({r["seed"] for r in records})
    fit = {}
    if any("train_loss" in r for r in records):  # recorded since the store kept the fit
        fit = {
            "fit": _fit(by_kind, kinds, phases),
            "epochs": {
                label: {run_name(r): [p["epochs"] for p in r["phases"]] for r in by_kind[kind]}
                for kind, label in kinds.items()
            },
            "optimizer_state": sorted(
                {json.dumps(r.get("optimizer_state", "not recorded")) for r in records}
            ),
        }
        handovers = sorted({row["handover"] for r in records for row in r["phases"] if "handover" in row})
        if handovers:  # recorded since phases could hand on their dev-selected epoch (train.handover)
            fit["handover"] = handovers
    return {
        "config_hash": reference["config_hash"],
        "design": designs[0],
        "metric": metric,
        "split": split,
        "higher_is_better": higher,
        "schedules": {label: by_kind[kind][0]["schedule"] for kind, label in kinds.items()},
        "seeds": per_seed,
        "stages": stages,
        "comparisons": [{**c.to_dict(), "equal_epochs": equal} for c, equal in comparisons],
        **({"baselines": sorted({r.get("baseline_seed") for r in records})} if several else {}),
        "unit": describe_unit(records, design),
        "runs": runs,
        **_practitioner(by_kind, kinds, design, split, metric, higher),
        **_other_metrics(by_kind, kinds, -1, split, metric, design),
        **_methods(by_kind, kinds, split, metric, higher),
        **fit,
        "environment": _environment(reference, records),
    }


def _environment(reference: dict[str, Any], records: list[dict]) -> dict[str, Any]:
    """The first record's versions and commit; uncommitted changes if any run had them, and every commit
    when the runs (or the phases of one run) disagree. A record names the code its run trained with
    (``environment_at: training``); records written before runs named it hold the code that recorded them."""
    env = {key: reference.get(key) for key in ("versions", "git_commit", "git_dirty") if key in reference}
    dirty = [r for r in records if r.get("git_dirty")]
    if dirty:
        env["git_dirty"] = True
        env["git_dirty_runs"] = len(dirty)
        trained = sum(r.get("environment_at") == "training" for r in dirty)
        if trained:
            env["git_dirty_trained"] = trained
    commits = sorted({c for r in records for c in r.get("git_commits", [r.get("git_commit")]) if c})
    if len(commits) > 1:
        env["git_commits"] = commits
    return env


def _dirty_note(env: dict[str, Any]) -> str:
    if not env.get("git_dirty"):
        return ""
    runs = env.get("git_dirty_runs")
    if not runs:
        return " (with uncommitted changes)"
    trained = env.get("git_dirty_trained", 0)
    when = [
        f"{n} of the runs were {what}"
        for n, what in ((trained, "trained"), (runs - trained, "recorded"))
        if n
    ]
    return f" (with uncommitted changes in the checkout when {' and '.join(when)})"


def _fit(by_kind: dict[str, list[dict]], kinds: dict[str, str], stages: list[dict]) -> list[dict[str, Any]]:
    """Per stage (DSD's phase rows ``stages``) and kind: the mean over seeds of the last epoch's training
    loss and of the dev loss (a run of another number of phases: at the same cumulative epochs)."""
    rows = []
    last = len(stages) - 1
    for i in range(len(stages)):
        row = {}
        for kind, label in kinds.items():
            at = [(r, _aligned(r, i, stages, last)) for r in by_kind[kind]]
            at = [(r, len(r["phases"]) - 1 if j == -1 else j) for r, j in at]
            train = [r["train_loss"][str(j)] for r, j in at if str(j) in r.get("train_loss", {})]
            dev = [v for r, j in at if (v := _value(r, j, "dev", "loss")) is not None]
            row[label] = {"train_loss": Sample(tuple(train)).mean, "dev_loss": Sample(tuple(dev)).mean}
        rows.append(row)
    return rows


def _methods(by_kind, kinds, split, metric, higher) -> dict[str, Any]:
    section = build_method_rows(by_kind, {**KIND_LABELS, **kinds}, split, metric, higher)
    return {} if section is None else {"methods": section}


def _aligned(record: dict[str, Any], phase: int, reference: list[dict], last: int) -> int | None:
    """The index in ``record`` of DSD's phase ``phase`` (``reference``: DSD's rows): -1 (its own final
    phase) for DSD's last, the same index when the run has DSD's number of phases, else its phase that
    ends at the same cumulative epochs (None: none does)."""
    if phase == last:
        return -1
    rows = record["phases"]
    if len(rows) == len(reference):
        return phase
    epochs = reference[phase]["cumulative_epochs"]
    return next((i for i, row in enumerate(rows) if row["cumulative_epochs"] == epochs), None)


def _practitioner(by_kind, kinds, design, split, metric, higher) -> dict[str, Any]:
    section = build_practitioner_rows(by_kind, kinds, design, split, metric, higher)
    return {} if section is None else {"practitioner": section}


def _run(by_kind: dict[str, list[dict]], kind: str, name: str) -> dict[str, Any]:
    """The ``kind`` run named ``name`` (:func:`run_name`), or an empty one."""
    return next((r for r in by_kind.get(kind, []) if run_name(r) == name), {"phases": []})


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def _number(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _epochs(cumulative: int | list[int]) -> str:
    """One number, or the range over seeds when phases ended at convergence at different epochs."""
    values = cumulative if isinstance(cumulative, list) else [cumulative]
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def _fit_markdown(table: dict[str, Any], labels: list[str]) -> list[str]:
    """The epochs each run's phases ran, train against dev loss per stage, and the optimizer policy."""
    if "fit" not in table:  # a report built before these were recorded
        return []
    several = bool(table.get("baselines"))
    lines = ["", f"## Epochs each phase ran (per {'run: baseline seed/seed' if several else 'seed'})", ""]
    for label, seeds in table["epochs"].items():
        word = "run" if several else "seed"
        runs = "; ".join(f"{word} {seed}: {'/'.join(map(str, e))}" for seed, e in seeds.items())
        lines.append(f"- {label}: {runs}")
    lines += [
        "",
        "## Fit per stage: training loss (mean over the stage's last epoch) / dev loss, mean over seeds",
        "",
        "| Stage | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for stage, fit in zip(table["stages"], table["fit"], strict=True):
        cells = [
            f"{_number(fit[label]['train_loss'], '.3f')} / {_number(fit[label]['dev_loss'], '.3f')}"
            for label in labels
        ]
        lines.append(f"| {stage['label']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "A training loss far below the dev loss is the overfitting DSD's sparse phase is meant to regularise "
        "(the paper's Sec. 6); – where the records have no training loss for that stage (continuations "
        "recorded before the store took their earlier stages from the run they continued).",
        "",
        "Optimizer state at phase boundaries: "
        + "; ".join(f"`{p}`" for p in table["optimizer_state"])
        + "."
        + (
            " What each phase handed on (`train.handover`): "
            + ", ".join(f"`{h}`" for h in table["handover"])
            + " (`last`: its last epoch, as the paper; `best`: its dev-selected epoch)."
            if table.get("handover")
            else ""
        ),
    ]
    return lines


def _other_metrics_markdown(table: dict[str, Any], labels: list[str]) -> list[str]:
    """The other recorded metrics' table: one row per model, one column per metric."""
    other = table.get("other_metrics")
    if not other:
        return []
    names = list(other)
    lines = [
        "",
        f"## Other metrics ({table['split']}; mean ± standard deviation, n)",
        "",
        "Dense: the dense phase; the others: the final phase. Not tested: the tables above are on "
        f"{table['metric']}; `--metric NAME` rebuilds them on another.",
        "",
        "| Model | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label in ["Dense", *labels]:
        cells = [other[n].get(label) for n in names]
        lines.append(
            f"| {label} | "
            + " | ".join("" if c is None else f"{_mean_std(c['mean'], c['std'])} ({c['n']})" for c in cells)
            + " |"
        )
    return lines


def comparison_markdown(table: dict[str, Any], regenerate: str | None = None) -> str:
    """The tables as markdown: per stage, then Table 10, then each seed's numbers."""
    direction = "higher is better" if table["higher_is_better"] else "lower is better"
    name = f"{table['split']} {table['metric']}"
    labels = [label for label in KIND_LABELS.values() if label in table["stages"][0]]
    design = table.get("design", "per-seed")
    described = "shared-baselines" if table.get("baselines") else design
    over = f"{len(table['seeds'])} seed{'s' if len(table['seeds']) != 1 else ''}"
    if table.get("baselines"):
        over = f"{len(table['baselines'])} dense baselines x {over}"
    lines = [
        f"# DSD against equal-epoch baselines over {over}: {name} ({direction})",
        "",
        f"Configuration `{table['config_hash']}`; seeds {', '.join(map(str, table['seeds']))}. Schedules: "
        + "; ".join(f"{label} `{s}`" for label, s in table["schedules"].items())
        + ".",
        "",
        f"Design: {DESIGN_TEXT.get(described, design)}"
        + (f" (baseline seeds {', '.join(map(str, table['baselines']))})" if table.get("baselines") else "")
        + ".",
        "",
        f"## {name} per stage (mean ± standard deviation over {'runs' if table.get('baselines') else 'seeds'})",
        "",
        "| Stage | Epochs (total) | " + " | ".join(labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    for stage in table["stages"]:
        cells = [_mean_std(stage[label]["mean"], stage[label]["std"]) for label in labels]
        lines.append(
            f"| {stage['label']} | {_epochs(stage['cumulative_epochs'])} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "## DSD against its baselines (the shape of the paper's Table 10)",
        "",
        "| Comparison | Equal epochs | Mean ± std | Baseline mean ± std | n | Abs. improvement "
        "| Rel. improvement | t | df | p-value |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in table["comparisons"]:
        rel = c["relative_improvement"]
        lines.append(
            f"| {c['method']} vs {c['baseline']} | {'yes' if c['equal_epochs'] else 'no'} "
            f"| {_mean_std(c['method_mean'], c['method_std'])} "
            f"| {_mean_std(c['baseline_mean'], c['baseline_std'])} | {c['method_n']} / {c['baseline_n']} "
            f"| {_number(c['improvement'], '+.2f')} | {'–' if rel is None else f'{100 * rel:+.2f}%'} "
            f"| {_number(c['t'], '.3f')} | {_number(c['df'], '.1f')} | {_number(c['p_value'], '.4f')} |"
        )
    test = (
        "a paired two-sided t-test over the dense baselines (`scipy.stats.ttest_rel` of the per-baseline "
        f"means; n counts baselines): {table['unit']}"
        if table.get("baselines")
        else "Welch's unpaired two-sided t-test (`scipy.stats.ttest_ind(equal_var=False)`)"
    )
    lines += [
        "",
        f"Improvement is positive when the first model is better ({direction} for {table['metric']}); relative "
        f"improvement is divided by the baseline's mean. t, df and p: {test}; – where a side has fewer than "
        f"two {'baselines' if table.get('baselines') else 'seeds'} or no spread. Only the equal-epoch rows "
        "separate DSD from more epochs at a lower learning rate.",
        "",
        "## Per run" if table.get("baselines") else "## Per seed",
        "",
    ]
    columns = list(next(iter(table["runs"].values())).keys()) if table["runs"] else []
    first = "Baseline/seed" if table.get("baselines") else "Seed"
    lines += [f"| {first} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for seed, row in table["runs"].items():
        lines.append(f"| {seed} | " + " | ".join(_number(row[c], ".2f") for c in columns) + " |")
    lines += practitioner_markdown(
        table.get("practitioner"), name, f"{direction} for {table['metric']}",
        {"mean_std": _mean_std, "number": _number},
    )  # fmt: skip
    lines += method_rows_markdown(
        table.get("methods"), name, f"{direction} for {table['metric']}",
        {"mean_std": _mean_std, "number": _number},
    )  # fmt: skip
    lines += _other_metrics_markdown(table, labels)
    lines += _fit_markdown(table, labels)
    env = table.get("environment", {})
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    commit = env.get("git_commit")
    lines += [
        "",
        f"Versions: {versions or 'not recorded'}; git commit {commit[:12] if commit else 'unknown'}"
        + (
            f" and {', '.join(c[:12] for c in env['git_commits'] if c != commit)}"
            if "git_commits" in env
            else ""
        )
        + _dirty_note(env)
        + ".",
    ]
    if regenerate:
        lines += ["", f"Regenerate this report without training: `{regenerate}`"]
    return "\n".join(lines) + "\n"
