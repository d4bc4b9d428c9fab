"""dsd-seq compare end to end on the toy task: one dense phase per seed shared by DSD, LLR and fine-tuning,
the run store, the Table-10 report checked against scipy on the runs' own results, resume and skip."""

import json
import os
from pathlib import Path

import pytest
from scipy import stats

from dsd_seq.cli import main
from dsd_seq.experiments.compare import parse_seeds
from dsd_seq.training.config import ConfigError
from dsd_seq.training.metrics_log import read_metrics
from tests.toy_cli_runs import toy_config_file


@pytest.fixture
def config(tmp_path, monkeypatch):
    return toy_config_file(tmp_path, monkeypatch)


def _final(run_dir: Path) -> float:
    return json.loads((run_dir / "results.json").read_text())["phases"][-1]["metrics"]["test"]["error"]


def test_compare_over_two_seeds_writes_store_report_and_figures(config, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--config", config, "--seeds", "2", "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted((r["seed"], r["kind"]) for r in records) == [
        (s, k) for s in (0, 1) for k in ("dsd", "final_lr", "llr")
    ]
    assert len({r["config_hash"] for r in records}) == 1
    assert all(r["versions"]["torch"] and "git_commit" in r and len(r["phases"]) == 3 for r in records)
    for seed in (0, 1):  # the three share the dense phase: same phase-1 result, separate folders after it
        dense = {k: json.loads((out / f"seed{seed}" / k / "results.json").read_text())["phases"][0]["metrics"]
                 for k in ("dsd", "llr", "final_lr")}  # fmt: skip
        assert dense["dsd"] == dense["llr"] == dense["final_lr"]
        assert not (out / f"seed{seed}" / "llr" / "checkpoints" / "phase1-end.pt").exists()
    schedules = json.loads((out / "report.json").read_text())["schedules"]
    assert schedules == {
        "DSD": "D2:0.01,S1@0.5:0.01,D1:0.001",
        "LLR": "D2:0.01,D1:0.01,D1:0.001",
        "Final-LR": "D2:0.01,D1:0.001,D1:0.001",
    }
    report = json.loads((out / "report.json").read_text())
    dsd = [_final(out / f"seed{s}" / "dsd") for s in (0, 1)]
    llr = [_final(out / f"seed{s}" / "llr") for s in (0, 1)]
    row = next(c for c in report["comparisons"] if c["baseline"] == "LLR")
    expected = stats.ttest_ind(dsd, llr, equal_var=False)
    if len(set(dsd)) > 1 or len(set(llr)) > 1:
        assert row["t"] == pytest.approx(expected.statistic) and row["p_value"] == pytest.approx(
            expected.pvalue
        )
    assert row["improvement"] == pytest.approx(sum(llr) / 2 - sum(dsd) / 2)  # error: lower is better
    markdown = (out / "report.md").read_text()
    assert "| DSD vs LLR | yes |" in markdown and "| DSD vs Final-LR | yes |" in markdown
    assert "| Sparse alone vs Dense | no |" in markdown and "Welch" in markdown
    for name in ("weight_distribution.png", "training_curves.png", "layer_sparsity.png"):
        png = (out / "figures" / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
        assert f"(figures/{name})" in markdown
    # the report comes back from the store alone, without the run folders
    before = (out / "report.json").read_text()
    for seed in (0, 1):
        os.rename(out / f"seed{seed}", tmp_path / f"moved{seed}")
    assert main(["compare", "--report-only", "--out", str(out)]) == 0
    assert (out / "report.json").read_text() == before
    assert "not drawn" not in capsys.readouterr().out  # no seed folder: the figures section is left out


def test_rerun_in_parallel_processes_resumes_an_interrupted_run_and_skips_finished_ones(
    config, tmp_path, capsys
):
    out = tmp_path / "cmp"
    seed0 = out / "seed0"
    # an earlier compare that finished the final-LR control (but died before recording it) and stopped inside
    # the LLR run, as a crash or Ctrl-C would leave them
    dense = ["train", "--config", config, "--set=train.seed=0", "--resume"]
    assert main([*dense, "--exp-dir", str(seed0 / "dsd"), "--until-phase", "1"]) == 0
    init = ["--init-from", str(seed0 / "dsd" / "checkpoints" / "phase1-end.pt")]
    assert main([*dense, "--exp-dir", str(seed0 / "final_lr"), "--baseline", "final_lr", *init]) == 0
    llr = [*dense, "--exp-dir", str(seed0 / "llr"), "--baseline", "llr", *init, "--stop-after-steps", "3"]
    assert main(llr) == 0
    assert main(["compare", "--config", config, "--seeds", "1", "--jobs", "2", "--out", str(out)]) == 0
    assert "--baseline llr" in (seed0 / "llr" / "train.log").read_text()  # trained by a child process
    assert not (seed0 / "final_lr" / "train.log").exists()
    llr_log = read_metrics(seed0 / "llr" / "metrics.jsonl")
    assert sum(r["event"] == "data" for r in llr_log) == 2  # started once, resumed once: not restarted
    assert sum(r["event"] == "data" for r in read_metrics(seed0 / "dsd" / "metrics.jsonl")) == 2
    assert sum(r["event"] == "data" for r in read_metrics(seed0 / "final_lr" / "metrics.jsonl")) == 1
    store = (out / "runs.jsonl").read_text()
    assert len(store.splitlines()) == 3
    logs = {p: p.read_text() for p in out.glob("seed0/*/metrics.jsonl")}
    capsys.readouterr()
    assert main(["compare", "--config", config, "--seeds", "1", "--out", str(out)]) == 0
    assert (out / "runs.jsonl").read_text() == store  # nothing trained, nothing recorded twice
    assert {p: p.read_text() for p in out.glob("seed0/*/metrics.jsonl")} == logs
    assert "p-value" in capsys.readouterr().out
    # a run trained again (here: its results edited, as a retrain on changed code would) is recorded again
    results = json.loads((seed0 / "llr" / "results.json").read_text())
    results["phases"][-1]["metrics"]["test"]["error"] = 0.123
    (seed0 / "llr" / "results.json").write_text(json.dumps(results))
    assert main(["compare", "--config", config, "--seeds", "1", "--out", str(out)]) == 0
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["phases"][-1]["metrics"]["test"]["error"] == 0.123


def test_a_store_with_two_configurations_needs_the_config_to_choose(config, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--config", config, "--seeds", "1", "--out", str(out)]) == 0
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[0])
    with (out / "runs.jsonl").open("a") as f:
        f.write(json.dumps({**record, "config_hash": "0123456789ab"}) + "\n")
    capsys.readouterr()
    assert main(["compare", "--report-only", "--out", str(out)]) == 2
    assert "2 configurations" in capsys.readouterr().err
    assert main(["compare", "--report-only", "--out", str(out), "--config", config]) == 0


def test_shared_baseline_design_continues_one_dense_model_with_every_seed(config, tmp_path, capsys):
    """The paper's Appendix A design: one dense baseline (seed 0), then DSD and fine-tuning (the LLR
    schedule) continued from it by every seed, so the spread comes from retraining only."""
    from dsd_seq.core.schedule import Schedule
    from dsd_seq.experiments.compare import plan_runs
    from dsd_seq.safe_io import load_safely

    out = tmp_path / "cmp"
    schedule = Schedule.parse("D2:1e-2,S1@0.5:1e-2,D1:1e-3")
    plan = plan_runs(Path(config), schedule, [0, 1], out, [], [], "shared-baseline")
    start = out / "baseline" / "checkpoints" / "phase1-end.pt"
    assert [(r.seed, r.kind) for r in plan] == [(0, "dense"), (0, "dsd"), (0, "llr"), (1, "dsd"), (1, "llr")]
    assert all(r.request.init_from == start for r in plan[1:])
    args = ["compare", "--config", config, "--seeds", "2", "--out", str(out), "--design", "shared-baseline"]
    assert main(args) == 0
    assert "design shared-baseline" in capsys.readouterr().out
    baseline = json.loads((out / "baseline" / "results.json").read_text())["phases"]
    assert len(baseline) == 1
    finals = {}
    for seed in (0, 1):
        for kind in ("dsd", "llr"):
            run = out / f"seed{seed}" / kind
            phases = json.loads((run / "results.json").read_text())["phases"]
            assert phases[0] == baseline[0]  # the dense row is the baseline's, carried over
            started = [r["phase"] for r in read_metrics(run / "metrics.jsonl") if r["event"] == "phase_start"]
            assert started == [1, 2]  # no dense phase trained here
            assert not (run / "checkpoints" / "phase1-end.pt").exists()
            finals[seed, kind] = load_safely(run / "checkpoints" / "phase3-end.pt")["model"]
    assert not (out / "seed0" / "final_lr").exists()  # the paper's design has DSD and fine-tuning only
    for kind in ("dsd", "llr"):  # the seeds retrain differently from the same start
        a, b = finals[0, kind], finals[1, kind]
        assert any(not a[name].equal(b[name]) for name in a if a[name].is_floating_point())
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted((r["seed"], r["kind"], r["design"]) for r in records) == [
        (s, k, "shared-baseline") for s in (0, 1) for k in ("dsd", "llr")
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["design"] == "shared-baseline" and set(report["schedules"]) == {"DSD", "LLR"}
    rows = {c["baseline"]: c for c in report["comparisons"] if c["method"] == "DSD"}
    assert set(rows) == {"LLR", "Dense"} and rows["Dense"]["baseline_n"] == 1  # one dense model
    markdown = (out / "report.md").read_text()
    assert "Design: shared-baseline (the paper's, Appendix A)" in markdown and "Final-LR" not in markdown
    # the other design's folders would be continued the wrong way: refused, naming the folder's design
    assert main(["compare", "--config", config, "--seeds", "2", "--out", str(out)]) == 2
    assert "holds a shared-baseline comparison" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("3", [0, 1, 2]), ("100-102", [100, 101, 102]), ("7,3,100-101", [7, 3, 100, 101]), ("5,5", [5])],
)
def test_seeds_are_a_count_a_range_or_a_list(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["0", "-1", "a", "5-3", "1-", "1,,2", "0-5000"])
def test_bad_seed_lists_are_refused_naming_the_option(text):
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds(text)


def test_seed_ranges_run_exactly_those_seeds(tmp_path, monkeypatch):
    config = toy_config_file(tmp_path, monkeypatch)
    out = tmp_path / "cmp"
    assert main(["compare", "--config", config, "--seeds", "100-102", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("seed*")) == ["seed100", "seed101", "seed102"]
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted({r["seed"] for r in records}) == [100, 101, 102]


def test_several_dense_baselines_are_each_continued_by_every_seed(tmp_path, monkeypatch, capsys):
    config = toy_config_file(tmp_path, monkeypatch)
    out = tmp_path / "cmp"
    argv = ["compare", "--config", config, "--design", "shared-baseline", "--baselines", "3", "--seeds", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    for b in (0, 1, 2):
        baseline = json.loads((out / f"b{b}" / "baseline" / "results.json").read_text())
        for seed in (0, 1):
            dsd = json.loads((out / f"b{b}" / f"seed{seed}" / "dsd" / "results.json").read_text())
            assert dsd["phases"][0] == baseline["phases"][0]  # continues its own baseline
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted((r["baseline_seed"], r["seed"], r["kind"]) for r in records) == sorted(
        (b, s, k) for b in (0, 1, 2) for s in (0, 1) for k in ("dsd", "llr")
    )
    dense = {json.dumps(json.loads((out / f"b{b}/baseline/results.json").read_text())["phases"][0]["metrics"])
             for b in (0, 1, 2)}  # fmt: skip
    assert len(dense) == 3  # three different dense models
    report = (out / "report.md").read_text()
    assert "over 3 dense baselines x 2 seeds" in report and "t-test over the dense baselines" in report
    assert (
        "## Figures (baseline seed 0, seed 0)" in report
        and (out / "figures" / "training_curves.png").is_file()
    )
    capsys.readouterr()
    assert main(["compare", "--config", config, "--baselines", "3", "--out", str(tmp_path / "x")]) == 2
    assert "--baselines is for --design shared-baseline" in capsys.readouterr().err
    one = ["compare", "--config", config, "--design", "shared-baseline", "--seeds", "1", "--out", str(out)]
    assert main(one) == 2  # one shared baseline in a folder of several: refused, not mixed into the report
    assert "needs its own --out folder" in capsys.readouterr().err
