"""The DSD paper's own results (Han et al., ICLR 2017, Tables 5, 7 and 9), to print beside a run's.

A user with the real data sees at once how close a run came: ``dsd-seq report EXP --paper table7`` adds
a table with one row per phase holding this run's main-split scores and the paper's. The numbers are
copied from the paper's tables; the paper scores DeepSpeech on WSJ '92 and WSJ '93 with max (greedy)
decoding and no language model (Sec. 4.5), and NeuralTalk with BLEU-1..4 on the Flickr8k test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PaperPhase:
    label: str
    sparsity: float
    epochs: int
    lr: float
    scores: tuple[float, ...]


@dataclass(frozen=True)
class PaperTable:
    title: str
    score_names: tuple[str, ...]
    phases: tuple[PaperPhase, ...]
    baseline: PaperPhase | None  # the paper's dense baseline at the same total epochs, where it has one


def _phase(label: str, sparsity: float, epochs: int, lr: float, *scores: float) -> PaperPhase:
    return PaperPhase(label, sparsity, epochs, lr, scores)


PAPER_TABLES: dict[str, PaperTable] = {
    "table5": PaperTable(
        "Table 5: DSD results on NeuralTalk (Flickr8k test)",
        ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"),
        (
            _phase("Baseline (dense)", 0.0, 19, 1e-2, 57.2, 38.6, 25.4, 16.8),
            _phase("Sparse", 0.8, 10, 1e-3, 58.4, 39.7, 26.3, 17.5),
            _phase("DSD", 0.0, 6, 1e-4, 59.2, 40.7, 27.4, 18.5),
        ),
        None,
    ),
    "table7": PaperTable(
        "Table 7: DSD results on Deep Speech 1, WER",
        ("WSJ '92 WER", "WSJ '93 WER"),
        (
            _phase("Dense Iter 0", 0.0, 50, 8e-4, 29.82, 34.57),
            _phase("Sparse Iter 1", 0.5, 50, 5e-4, 27.90, 32.99),
            _phase("Dense Iter 1", 0.0, 50, 3e-4, 27.90, 32.20),
            _phase("Sparse Iter 2", 0.25, 50, 1e-4, 27.45, 32.99),
            _phase("Dense Iter 2", 0.0, 50, 3e-5, 27.45, 31.59),
        ),
        _phase("Baseline", 0.0, 150, 8e-4, 28.03, 33.55),
    ),
    "table9": PaperTable(
        "Table 9: DSD results on Deep Speech 2, WER",
        ("WSJ '92 WER", "WSJ '93 WER"),
        (
            _phase("Dense Iter 0", 0.0, 20, 3e-4, 11.83, 17.42),
            _phase("Sparse Iter 1", 0.5, 20, 3e-4, 10.65, 14.84),
            _phase("Dense Iter 1", 0.0, 20, 3e-5, 9.11, 13.96),
            _phase("Sparse Iter 2", 0.25, 20, 3e-5, 8.94, 14.02),
            _phase("Dense Iter 2", 0.0, 20, 6e-6, 9.02, 13.44),
        ),
        _phase("Baseline", 0.0, 60, 3e-4, 9.55, 14.52),
    ),
}


def paper_table(name: str) -> PaperTable:
    try:
        return PAPER_TABLES[name]
    except KeyError:
        raise ValueError(f"--paper {name!r}: the paper tables known are {', '.join(PAPER_TABLES)}") from None


def _our_scores(row: dict[str, Any] | None, split: str) -> dict[str, float]:
    return {} if row is None else dict(row["metrics"].get(split, {}))


def paper_markdown(
    name: str, dsd: dict[str, Any], baseline: dict[str, Any] | None = None, split: str = "test"
) -> str:
    """The paper's table ``name`` beside this run's ``split`` scores, phase by phase.

    ``dsd`` is a run's ``results.json``; ``baseline`` the results of a dense baseline of the same total
    epochs (the recipes' ``exp/dense``), whose last phase is shown beside the paper's baseline row."""
    table = paper_table(name)
    ours = dsd["phases"]
    our_names = sorted({n for row in ours for n in row["metrics"].get(split, {})})
    header = ["Phase (paper)", "Sparsity", "Epochs", "LR", *(f"ours: {split} {n}" for n in our_names)]
    header += [f"paper: {n}" for n in table.score_names]
    lines = [f"The paper's {table.title}, beside this run ({split} split)", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def line(phase: PaperPhase, row: dict[str, Any] | None) -> str:
        mine = _our_scores(row, split)
        cells = [phase.label, f"{100 * phase.sparsity:.0f}%", str(phase.epochs), f"{phase.lr:g}"]
        cells += [f"{mine[n]:.2f}" if n in mine else "" for n in our_names]
        cells += [f"{s:.2f}" for s in phase.scores]
        return "| " + " | ".join(cells) + " |"

    for i, phase in enumerate(table.phases):
        lines.append(line(phase, ours[i] if i < len(ours) else None))
    if table.baseline is not None:
        last = baseline["phases"][-1] if baseline and baseline.get("phases") else None
        lines.append(line(table.baseline, last))
    beyond = [n for n in our_names if n in ("meteor", "rouge_l", "cider_d")]
    if name == "table5" and beyond:
        lines += [
            "",
            f"The paper reports BLEU only; this run's {', '.join(beyond)} (the COCO caption evaluation, on "
            "0-100) have no paper column.",
        ]
    if len(ours) != len(table.phases):
        lines += [
            "",
            f"This run has {len(ours)} phases, the paper's table {len(table.phases)}: rows pair by position.",
        ]
    return "\n".join(lines) + "\n"
