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


def _rebuilt(tmp_path, example: Path) -> dict:
    shutil.copy(example / "runs.jsonl", tmp_path / "runs.jsonl")
    shutil.copytree(example / "figures", tmp_path / "figures")
    assert main(["compare", "--out", str(tmp_path), "--report-only"]) == 0

    def text(report):  # the whole markdown report, but the line naming the folder it was built in
        return [line for line in report.read_text().splitlines() if not line.startswith("Regenerate")]

    assert text(tmp_path / "report.md") == text(example / "report.md")  # figures kept without run folders
    return json.loads((tmp_path / "report.json").read_text())


@pytest.mark.parametrize("folder", ["compare-synth-captions-sgd", "compare-synth-captions-adam"])
def test_the_caption_comparisons_over_five_dense_baselines_match_scipy(tmp_path, folder):
    """Five dense baselines (never-used seeds 100-104), each continued as DSD and as fine-tuning: every
    test is paired over the baselines, and the early-stopped dense model is each baseline's best dev epoch."""
    example = EXAMPLE.parent / folder
    rebuilt = _rebuilt(tmp_path, example)
    checked_in = json.loads((example / "report.json").read_text())
    for key in ("comparisons", "stages", "fit", "epochs", "practitioner", "baselines", "design"):
        assert rebuilt[key] == checked_in[key], key
    assert checked_in["baselines"] == [100, 101, 102, 103, 104]
    records = [json.loads(line) for line in (example / "runs.jsonl").read_text().splitlines()]
    order = checked_in["baselines"]

    def by_baseline(kind, read):
        return [
            next(read(r) for r in records if r["kind"] == kind and r["baseline_seed"] == b) for b in order
        ]

    final = {k: by_baseline(k, lambda r: r["phases"][-1]["metrics"]["test"]["bleu4"]) for k in ("dsd", "llr")}
    selected = {
        k: by_baseline(k, lambda r: r["phases"][-1]["best"]["metrics"]["test"]["bleu4"])
        for k in ("dsd", "llr")
    }
    early = by_baseline("dsd", lambda r: r["phases"][0]["best"]["metrics"]["test"]["bleu4"])
    dense = by_baseline("dsd", lambda r: r["phases"][0]["metrics"]["test"]["bleu4"])
    expected = {
        ("DSD", "LLR"): stats.ttest_rel(final["dsd"], final["llr"]),
        ("DSD", "Dense"): stats.ttest_rel(final["dsd"], dense),
    }
    for row in checked_in["comparisons"]:
        if (row["method"], row["baseline"]) in expected:
            want = expected[(row["method"], row["baseline"])]
            assert row["t"] == pytest.approx(want.statistic) and row["p_value"] == pytest.approx(want.pvalue)
    practitioner = {(c["method"], c["baseline"]): c for c in checked_in["practitioner"]["comparisons"]}
    for (method, baseline), want in {
        ("DSD", "Early-stopped dense"): stats.ttest_rel(final["dsd"], early),
        ("LLR", "Early-stopped dense"): stats.ttest_rel(final["llr"], early),
        ("DSD (dev-selected)", "Early-stopped dense"): stats.ttest_rel(selected["dsd"], early),
        ("DSD (dev-selected)", "LLR (dev-selected)"): stats.ttest_rel(selected["dsd"], selected["llr"]),
    }.items():
        row = practitioner[(method, baseline)]
        assert row["t"] == pytest.approx(want.statistic) and row["p_value"] == pytest.approx(want.pvalue)
        assert row["method_n"] == 5 and "over dense baselines" in row["test"]
    for record in records:  # equal epochs: each baseline's fine-tuning trained the epochs its DSD realized
        twin = next(
            r
            for r in records
            if r["baseline_seed"] == record["baseline_seed"] and r["kind"] != record["kind"]
        )
        assert [p["epochs"] for p in record["phases"]] == [p["epochs"] for p in twin["phases"]]
        assert record["phases"][0]["best"]["epoch"] < record["phases"][0]["epochs"]  # ran past its best
    assert (example / "figures" / "weight_distribution.png").stat().st_size > 5000


def test_the_built_in_caption_recipe_over_five_seeds_is_rebuilt_from_its_store(tmp_path):
    example = EXAMPLE.parent / "compare-synth-captions-recipe"
    rebuilt = _rebuilt(tmp_path, example)
    assert rebuilt["seeds"] == [300, 301, 302, 303, 304] and rebuilt["design"] == "per-seed"
    records = [json.loads(line) for line in (example / "runs.jsonl").read_text().splitlines()]
    final = {k: [r["phases"][-1]["metrics"]["test"]["bleu4"] for r in sorted(records, key=lambda r: r["seed"]) if r["kind"] == k]
             for k in ("dsd", "llr")}  # fmt: skip
    early = [
        r["phases"][0]["best"]["metrics"]["test"]["bleu4"]
        for r in sorted(records, key=lambda r: r["seed"])
        if r["kind"] == "dsd"
    ]
    row = next(
        c
        for c in rebuilt["practitioner"]["comparisons"]
        if c["method"] == "DSD" and c["baseline"] == "Early-stopped dense"
    )
    want = stats.ttest_rel(final["dsd"], early)
    assert row["t"] == pytest.approx(want.statistic) and row["p_value"] == pytest.approx(want.pvalue)


def test_a_report_rebuilt_on_another_recorded_metric(tmp_path, capsys):
    """`compare --report-only --metric cer` tests the same runs on CER (report-cer.md beside report.md);
    a metric the runs did not record is refused naming those they did."""
    shutil.copy(EXAMPLE / "runs.jsonl", tmp_path / "runs.jsonl")
    assert main(["compare", "--out", str(tmp_path), "--report-only", "--metric", "cer"]) == 0
    assert not (tmp_path / "report.md").exists()
    rebuilt = json.loads((tmp_path / "report-cer.json").read_text())
    assert rebuilt["metric"] == "cer" and rebuilt["higher_is_better"] is False
    finals: dict[str, list[float]] = {}
    for line in (EXAMPLE / "runs.jsonl").read_text().splitlines():
        record = json.loads(line)
        finals.setdefault(record["kind"], []).append(record["phases"][-1]["metrics"]["test"]["cer"])
    row = next(r for r in rebuilt["comparisons"] if r["baseline"] == "LLR")
    expected = stats.ttest_ind(finals["dsd"], finals["llr"], equal_var=False)
    assert row["p_value"] == pytest.approx(expected.pvalue) and row["t"] == pytest.approx(expected.statistic)
    assert "--report-only --metric cer" in (tmp_path / "report-cer.md").read_text()
    assert set(rebuilt["other_metrics"]) == {"wer"}  # the main metric becomes an other one
    capsys.readouterr()
    assert main(["compare", "--out", str(tmp_path), "--report-only", "--metric", "cider_d"]) == 2
    assert "the runs recorded cer, wer on test; choose one" in capsys.readouterr().err


def test_other_metrics_are_the_final_phase_means_of_the_recorded_scores():
    example = EXAMPLE.parent / "compare-synth-captions-recipe"
    report = json.loads((example / "report.json").read_text())
    records = [json.loads(line) for line in (example / "runs.jsonl").read_text().splitlines()]
    dsd = [r["phases"][-1]["metrics"]["test"]["bleu1"] for r in records if r["kind"] == "dsd"]
    dense = [r["phases"][0]["metrics"]["test"]["bleu1"] for r in records if r["kind"] == "dsd"]
    cells = report["other_metrics"]["bleu1"]
    assert cells["DSD"]["n"] == len(dsd) == 5
    assert cells["DSD"]["mean"] == pytest.approx(sum(dsd) / 5)
    assert cells["Dense"]["mean"] == pytest.approx(sum(dense) / 5)
    assert "## Other metrics (test" in (example / "report.md").read_text()


def test_the_recipe_replication_reports_on_bleu4_and_cider_d_are_rebuilt_from_their_store(tmp_path):
    example = EXAMPLE.parent / "compare-synth-captions-recipe-400"
    shutil.copy(example / "runs.jsonl", tmp_path / "runs.jsonl")
    shutil.copytree(example / "figures", tmp_path / "figures")
    assert main(["compare", "--out", str(tmp_path), "--report-only"]) == 0
    assert main(["compare", "--out", str(tmp_path), "--report-only", "--metric", "cider_d"]) == 0

    def text(report):
        return [line for line in report.read_text().splitlines() if not line.startswith("Regenerate")]

    records = [json.loads(line) for line in (example / "runs.jsonl").read_text().splitlines()]
    for name, metric in (("report", "bleu4"), ("report-cider_d", "cider_d")):
        assert text(tmp_path / f"{name}.md") == text(example / f"{name}.md")
        finals = {
            kind: [r["phases"][-1]["metrics"]["test"][metric] for r in records if r["kind"] == kind]
            for kind in ("dsd", "llr")
        }
        row = next(
            r
            for r in json.loads((example / f"{name}.json").read_text())["comparisons"]
            if r["baseline"] == "LLR"
        )
        assert row["p_value"] == pytest.approx(
            stats.ttest_ind(finals["dsd"], finals["llr"], equal_var=False).pvalue
        )
    assert all("meteor" in r["phases"][-1]["metrics"]["test"] for r in records)  # scored where Java ran


@pytest.mark.parametrize(
    ("folder", "metric", "seeds", "arms"),
    [
        (
            "compare-methods-synth-captions",
            "bleu4",
            [500, 501, 502, 503, 504],
            "dsd,llr,final_lr,gmp,rigl,set,acdc",
        ),
        ("compare-methods-synth-captions-510", "bleu4", [510, 511, 512], "dsd,gmp,rigl,set,acdc"),
        (
            "compare-methods-synth-speech",
            "wer",
            [600, 601, 602, 603, 604],
            "dsd,llr,final_lr,gmp,rigl,set,acdc",
        ),
    ],
)
def test_the_methods_comparisons_are_rebuilt_from_their_stores_and_match_scipy(
    tmp_path, folder, metric, seeds, arms
):
    """The checked-in comparisons of DSD against gradual pruning, RigL, SET and AC/DC: each report is what
    its store gives, and its tests are Welch's over the seeds' final (and DSD's sparse-phase) scores."""
    example = EXAMPLE.parent / folder
    rebuilt = _rebuilt(tmp_path, example)
    assert rebuilt["seeds"] == seeds and rebuilt["design"] == "per-seed"
    records = sorted(
        (json.loads(line) for line in (example / "runs.jsonl").read_text().splitlines()),
        key=lambda r: r["seed"],
    )
    final = {}
    for record in records:
        final.setdefault(record["kind"], []).append(record["phases"][-1]["metrics"]["test"][metric])
    assert sorted(final) == sorted(arms.split(","))
    assert all(len(scores) == len(seeds) for scores in final.values())
    names = {"Gradual": "gmp", "RigL": "rigl", "SET": "set", "AC/DC": "acdc"}
    rows = {r["baseline"]: r for r in rebuilt["comparisons"] if r["equal_epochs"]}
    for name, kind in names.items():
        want = stats.ttest_ind(final["dsd"], final[kind], equal_var=False)
        assert rows[name]["p_value"] == pytest.approx(want.pvalue), name
    dsd_sparse = [r["phases"][1]["metrics"]["test"][metric] for r in records if r["kind"] == "dsd"]
    sparse_rows = {r["method"]: r for r in rebuilt["methods"]["sparse"]["comparisons"]}
    sparse_names = {
        "Gradual": "gmp",
        "RigL": "rigl",
        "SET": "set",
        "AC/DC sparse end": "acdc",
    }  # all end sparse
    for name, kind in sparse_names.items():
        want = stats.ttest_ind(final[kind], dsd_sparse, equal_var=False)
        assert sparse_rows[name]["p_value"] == pytest.approx(want.pvalue), name
    dsd_epochs = {r["seed"]: sum(p["epochs"] for p in r["phases"]) for r in records if r["kind"] == "dsd"}
    for record in records:  # every arm trained as many epochs as its seed's DSD run
        assert sum(p["epochs"] for p in record["phases"]) == dsd_epochs[record["seed"]], record["kind"]
    assert (example / "figures" / "weight_distribution.png").stat().st_size > 5000
