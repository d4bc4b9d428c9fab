"""The checked-in compare examples (docs/examples/) are what their run stores give: each report is rebuilt
from runs.jsonl alone and its statistics match the checked-in report and scipy."""

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


@pytest.mark.parametrize(
    ("folder", "metric"),
    [
        ("compare-synth-captions-sgd", "bleu4"),
        ("compare-synth-captions-adam", "bleu4"),
        ("compare-synth-speech-open-sgd", "wer"),
        ("compare-synth-speech-open-adam", "wer"),
    ],
)
def test_checked_in_converged_reports_are_rebuilt_from_their_run_stores(tmp_path, folder, metric):
    example = EXAMPLE.parent / folder
    shutil.copy(example / "runs.jsonl", tmp_path / "runs.jsonl")
    shutil.copytree(example / "figures", tmp_path / "figures")
    assert main(["compare", "--out", str(tmp_path), "--report-only"]) == 0
    rebuilt = json.loads((tmp_path / "report.json").read_text())

    def text(report):  # the whole markdown report, but the line naming the folder it was built in
        return [line for line in report.read_text().splitlines() if not line.startswith("Regenerate")]

    assert text(tmp_path / "report.md") == text(example / "report.md")  # figures kept without run folders
    dirty = [json.loads(line).get("git_dirty") for line in (example / "runs.jsonl").read_text().splitlines()]
    assert rebuilt["environment"].get("git_dirty_runs", 0) == sum(map(bool, dirty))  # any dirty run is said
    checked_in = json.loads((example / "report.json").read_text())
    for key in ("comparisons", "stages", "fit", "epochs", "optimizer_state", "design"):
        assert rebuilt[key] == checked_in[key], key
    assert checked_in["design"] == "shared-baseline" and len(checked_in["seeds"]) == 5
    records = [json.loads(line) for line in (example / "runs.jsonl").read_text().splitlines()]
    finals = {
        kind: [r["phases"][-1]["metrics"]["test"][metric] for r in records if r["kind"] == kind]
        for kind in ("dsd", "llr")
    }
    (row,) = [r for r in checked_in["comparisons"] if r["equal_epochs"]]  # DSD vs LLR (fine-tuning)
    expected = stats.ttest_ind(finals["dsd"], finals["llr"], equal_var=False)
    assert row["p_value"] == pytest.approx(expected.pvalue) and row["t"] == pytest.approx(expected.statistic)
    for record in records:  # equal epochs: each seed's LLR trained the epochs its DSD run realized
        twin = next(r for r in records if r["seed"] == record["seed"] and r["kind"] != record["kind"])
        assert [p["epochs"] for p in record["phases"]] == [p["epochs"] for p in twin["phases"]]
    assert (example / "figures" / "weight_distribution.png").stat().st_size > 5000
