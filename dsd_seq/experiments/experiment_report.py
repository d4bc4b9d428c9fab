"""``dsd-seq report EXP_DIR``: the markdown report (tables and figures) of a finished experiment.

Three layouts are recognised, all built from files on disk only:
- a comparison (``dsd-seq compare --out EXP_DIR``): ``runs.jsonl`` and ``seed<S>/{dsd,llr,final_lr}``;
  writes ``report.md`` and ``report.json`` (the Table-10 comparison) and figures of the first seed;
- a recipe's ``exp/`` with ``dsd/`` and optionally ``llr/`` and ``final_lr/``: writes the per-phase
  table ``results.md``/``results.json`` as before, figures, and ``report.md`` holding both;
- a single run folder (``results.json``, ``checkpoints/``): ``report.md`` with its table and figures.
Figures go to ``EXP_DIR/figures/``.
"""

from __future__ import annotations

import json
from pathlib import Path

from dsd_seq.experiments.compare import BASELINE_FOLDER
from dsd_seq.experiments.comparison_table import (
    KIND_LABELS,
    build_comparison,
    comparison_markdown,
    select_experiment,
)
from dsd_seq.experiments.figures import (
    CURVES_FIGURE,
    SPARSITY_FIGURE,
    WEIGHT_FIGURE,
    FigureError,
    layer_sparsity_figure,
    training_curves_figure,
    weight_distribution_figure,
)
from dsd_seq.experiments.paper_tables import paper_markdown
from dsd_seq.experiments.report import build_table, load_results, to_markdown, write_report
from dsd_seq.experiments.run_store import RENAMED_KINDS, STORE_NAME, latest_records, read_store
from dsd_seq.safe_io import CheckpointError
from dsd_seq.training.metrics_log import MetricsLogError

#: The report's figures, in order: (caption, file name in ``figures/``).
FIGURE_CAPTIONS = (
    ("Weight distribution of one layer through DSD (the paper's Figure 2)", WEIGHT_FIGURE),
    ("Training curves with the phase boundaries", CURVES_FIGURE),
    ("Per-layer sparsity", SPARSITY_FIGURE),
)


def write_figures(
    runs: dict[str, Path], figures_dir: Path, layer: str | None = None, dense_start: Path | None = None
) -> list[str]:
    """The three figures for a DSD run (``runs["DSD"]``) and its baselines; returns markdown lines
    (an image each, or why it is missing). ``dense_start``: the dense phase's end the run started from."""
    dsd = runs["DSD"]
    lines = []
    draw = {
        WEIGHT_FIGURE: lambda out: weight_distribution_figure(dsd, out, layer, dense_start),
        CURVES_FIGURE: lambda out: training_curves_figure(runs, out),
        SPARSITY_FIGURE: lambda out: layer_sparsity_figure(dsd, out),
    }
    for caption, name in FIGURE_CAPTIONS:
        make = draw[name]
        try:
            path = make(figures_dir / name)
        except (FigureError, FileNotFoundError, OSError, CheckpointError, MetricsLogError) as err:
            # one unreadable checkpoint or damaged log costs its figure, not the report
            lines += [f"*{caption}: not drawn ({err}).*", ""]
            continue
        lines += [f"![{caption}]({path.relative_to(figures_dir.parent).as_posix()})", ""]
    return lines


def _runs_in(folder: Path) -> dict[str, Path]:
    """Label -> run folder for the DSD run and the baselines present (finished or not); a folder of a
    renamed kind (``finetune/``, see ``run_store.RENAMED_KINDS``) under its new label."""
    folders = {**RENAMED_KINDS, **{kind: kind for kind in KIND_LABELS}}  # the new name wins if both exist
    return {KIND_LABELS[kind]: folder / name for name, kind in folders.items() if (folder / name / "results.json").is_file()}  # fmt: skip


def write_comparison_report(
    out: str | Path, wanted_hash: str | None = None, layer: str | None = None, metric: str | None = None
) -> tuple[Path, Path]:
    """``report.md`` and ``report.json`` of a comparison, from its run store (no training); on another
    recorded ``metric`` than the task's main one, ``report-<metric>.md`` and ``.json`` beside them."""
    out = Path(out)
    records = select_experiment(latest_records(read_store(out / STORE_NAME)), wanted_hash)
    table = build_comparison(records, metric)
    other = metric is not None and metric != records[0]["metric"]
    again = f"dsd-seq compare --out {out} --report-only" + (f" --metric {metric}" if other else "")
    md = comparison_markdown(table, regenerate=again)
    first = min(table["seeds"])
    home = out / f"b{table['baselines'][0]}" if table.get("baselines") else out  # several dense baselines
    runs = _runs_in(home / f"seed{first}")
    if "DSD" in runs:
        start = (
            home / BASELINE_FOLDER / "checkpoints" / "phase1-end.pt"
            if table["design"] == "shared-baseline"
            else None
        )
        figures = write_figures(runs, out / "figures", layer, start)
    else:  # a store without its run folders (a checked-in example): keep the figures drawn when they were there
        drawn = [(c, n) for c, n in FIGURE_CAPTIONS if (out / "figures" / n).is_file()]
        figures = [line for caption, name in drawn for line in (f"![{caption}](figures/{name})", "")]
    if figures:
        which = (
            f"baseline seed {table['baselines'][0]}, seed {first}"
            if table.get("baselines")
            else f"seed {first}"
        )
        md += f"\n## Figures ({which})\n\n" + "\n".join(figures)
    stem = f"report-{metric}" if other else "report"
    md_path, json_path = out / f"{stem}.md", out / f"{stem}.json"
    md_path.write_text(md)
    json_path.write_text(json.dumps(table, indent=2) + "\n")
    return md_path, json_path


def write_experiment_report(exp_dir: str | Path, layer: str | None = None, paper: str | None = None) -> Path:
    """``report.md`` for any of the three layouts (see the module docstring); returns its path. With
    ``paper`` (e.g. "table7") a recipe's report also shows that table of the paper beside its phases."""
    exp_dir = Path(exp_dir)
    if (exp_dir / STORE_NAME).is_file():
        return write_comparison_report(exp_dir, layer=layer)[0]
    runs = _runs_in(exp_dir)
    skipped = []
    for label in [label for label in runs if label != "DSD"]:  # a damaged baseline costs its rows only
        try:
            load_results(runs[label])
        except ValueError as err:
            skipped.append(f"*{label}: left out ({err}).*")
            del runs[label]
    if "DSD" in runs:
        baseline = runs.get("LLR")
        table_md, _ = write_report(runs["DSD"], baseline, exp_dir / "results")
        parts = [table_md.read_text()]
        if "Final-LR" in runs:
            parts.append(to_markdown(build_table(load_results(runs["Final-LR"]))))
        if paper:
            dense = exp_dir / "dense" / "results.json"  # the recipes' same-epochs dense baseline
            baseline_results = load_results(dense.parent) if dense.is_file() else None
            parts.append(paper_markdown(paper, load_results(runs["DSD"]), baseline_results))
    elif (exp_dir / "results.json").is_file():
        runs = {"DSD": exp_dir}
        parts = [to_markdown(build_table(load_results(exp_dir)))]
    else:
        raise FileNotFoundError(
            f"{exp_dir} holds no finished run: expected {STORE_NAME} (dsd-seq compare), dsd/results.json "
            "(a recipe's exp folder) or results.json (a run folder)"
        )
    md = f"# DSD report: {exp_dir}\n\n" + "\n".join([*parts, *skipped]) + "\n## Figures\n\n"
    md += "\n".join(write_figures(runs, exp_dir / "figures", layer))
    md += f"\nRegenerate: `dsd-seq report {exp_dir}`\n"
    path = exp_dir / "report.md"
    path.write_text(md)
    return path
