"""The checked-in compare example (docs/examples/compare-synth-speech) is what its run store gives: the
report is rebuilt from runs.jsonl alone and its statistics match the checked-in report and scipy."""

import json
import shutil
from pathlib import Path

import pytest
from scipy import stats

from dsd_seq.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "compare-synth-speech"


def test_checked_in_compare_report_is_rebuilt_from_its_run_store(tmp_path, capsys):
    shutil.copy(EXAMPLE / "runs.jsonl", tmp_path / "runs.jsonl")
    assert main(["compare", "--out", str(tmp_path), "--report-only"]) == 0
    rebuilt = json.loads((tmp_path / "report.json").read_text())
    checked_in = json.loads((EXAMPLE / "report.json").read_text())
    assert rebuilt["comparisons"] == checked_in["comparisons"] and rebuilt["stages"] == checked_in["stages"]
    finals: dict[str, list[float]] = {}
    for line in (EXAMPLE / "runs.jsonl").read_text().splitlines():
        record = json.loads(line)
        finals.setdefault(record["kind"], []).append(record["phases"][-1]["metrics"]["test"]["wer"])
    assert all(len(v) == 5 for v in finals.values())  # 5 seeds of DSD, LLR and the final-LR control
    for row in (r for r in checked_in["comparisons"] if r["equal_epochs"]):
        baseline = {"LLR": "llr", "Final-LR": "finetune"}[row["baseline"]]  # stored under its old name
        expected = stats.ttest_ind(finals["dsd"], finals[baseline], equal_var=False)
        assert row["p_value"] == pytest.approx(expected.pvalue) and row["t"] == pytest.approx(
            expected.statistic
        )
    assert (EXAMPLE / "figures" / "weight_distribution.png").stat().st_size > 5000
