"""The paper's Tables 5, 7 and 9 as the reports print them beside a run."""

import pytest

from dsd_seq.experiments.paper_tables import PAPER_TABLES, paper_markdown


def _results(phases):
    return {"phases": [{"metrics": {"test": {"wer": wer}}} for wer in phases]}


def test_tables_hold_the_papers_schedules():
    assert [(p.sparsity, p.epochs, p.lr) for p in PAPER_TABLES["table7"].phases] == [
        (0.0, 50, 8e-4), (0.5, 50, 5e-4), (0.0, 50, 3e-4), (0.25, 50, 1e-4), (0.0, 50, 3e-5)]  # fmt: skip
    assert (PAPER_TABLES["table7"].baseline.epochs, PAPER_TABLES["table7"].baseline.lr) == (150, 8e-4)
    assert [(p.sparsity, p.epochs, p.lr) for p in PAPER_TABLES["table9"].phases] == [
        (0.0, 20, 3e-4), (0.5, 20, 3e-4), (0.0, 20, 3e-5), (0.25, 20, 3e-5), (0.0, 20, 6e-6)]  # fmt: skip
    assert (PAPER_TABLES["table9"].baseline.epochs, PAPER_TABLES["table9"].baseline.lr) == (60, 3e-4)
    assert [(p.sparsity, p.epochs, p.lr) for p in PAPER_TABLES["table5"].phases] == [
        (0.0, 19, 1e-2), (0.8, 10, 1e-3), (0.0, 6, 1e-4)]  # fmt: skip


def test_paper_scores_sit_beside_the_runs_phase_by_phase():
    text = paper_markdown("table9", _results([12.5, 11.0, 10.25]), baseline=_results([10.0]))
    lines = text.splitlines()
    assert (
        "| Phase (paper) | Sparsity | Epochs | LR | ours: test wer | paper: WSJ '92 WER | paper: WSJ '93 WER |"
        in lines
    )
    assert "| Dense Iter 0 | 0% | 20 | 0.0003 | 12.50 | 11.83 | 17.42 |" in lines
    assert "| Dense Iter 1 | 0% | 20 | 3e-05 | 10.25 | 9.11 | 13.96 |" in lines
    assert "| Sparse Iter 2 | 25% | 20 | 3e-05 |  | 8.94 | 14.02 |" in lines  # this run stopped earlier
    assert "| Baseline | 0% | 60 | 0.0003 | 10.00 | 9.55 | 14.52 |" in lines
    assert "rows pair by position" in text


def test_unknown_table_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="table5, table7, table9"):
        paper_markdown("table6", _results([1.0]))


def test_table5_keeps_the_papers_bleu_columns_beside_every_caption_metric():
    scores = {"bleu1": 60.0, "bleu2": 41.0, "bleu3": 28.0, "bleu4": 19.0, "rouge_l": 45.0, "cider_d": 51.5}
    results = {"phases": [{"metrics": {"test": scores}}] * 3}
    text = paper_markdown("table5", results)
    row = next(line for line in text.splitlines() if line.startswith("| DSD "))
    assert "| 51.50 |" in row and row.endswith("| 59.20 | 40.70 | 27.40 | 18.50 |")
    assert "ours: test cider_d" in text and "paper: BLEU-4" in text and "paper: CIDEr" not in text
    assert "The paper reports BLEU only; this run's cider_d, rouge_l (the COCO" in text
    bleu_only = paper_markdown("table5", {"phases": [{"metrics": {"test": {"bleu4": 19.0}}}] * 3})
    assert "BLEU only" not in bleu_only
