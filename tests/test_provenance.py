"""Each phase row names the code that trained it, read when the trainer starts; the run store keeps that,
not the code that happens to be checked out when a comparison records the finished run."""

import json

from dsd_seq.core.schedule import Schedule
from dsd_seq.experiments import run_store
from dsd_seq.experiments.comparison_table import build_comparison, comparison_markdown
from dsd_seq.experiments.training_fit import last_epoch_train_loss
from dsd_seq.training import trainer
from dsd_seq.training.config import load_config
from dsd_seq.training.provenance import environment, run_environment
from dsd_seq.training.run import train_run

CONFIG = """\
task: tests.toy_task:build_toy_task
schedule: D1:1e-2,S1@0.5:1e-2,D1:1e-3
train: {num_threads: 1, progress: false, tensorboard: false}
"""
VERSIONS = {"dsd_seq": "0", "torch": "0", "python": "0"}


def fake(commit: str, dirty: bool) -> dict:
    return {"versions": VERSIONS, "git_commit": commit * 40, "git_dirty": dirty}


def test_environment_names_versions_and_the_git_commit_in_plain_values():
    env = environment()
    assert set(env["versions"]) == {"dsd_seq", "torch", "python"}
    # plain str: checkpoints hold the rows and are loaded safely (torch's TorchVersion would be refused)
    assert all(type(v) is str for v in env["versions"].values())
    assert env["git_commit"] is None or len(env["git_commit"]) == 40


def test_run_environment_summarises_the_phases():
    same = [{"environment": fake("a", False)}, {"environment": fake("a", False)}]
    assert run_environment(same) == {**fake("a", False)}
    resumed = [
        {"environment": fake("a", False)},
        {"environment": fake("b", True)},
        {"environment": fake("b", False)},
    ]
    assert run_environment(resumed) == {**fake("b", True), "git_commits": ["a" * 40, "b" * 40]}
    outside_git = [{"environment": {"versions": VERSIONS, "git_commit": None, "git_dirty": None}}]
    assert run_environment(outside_git)["git_dirty"] is None
    assert run_environment([{"phase": 0}]) is None  # written before rows named their code
    mixed = [{"phase": 0}, {"phase": 1, "environment": fake("a", False)}]  # an older run resumed
    assert run_environment(mixed) == {**fake("a", False), "unrecorded_phases": [0]}


def _train(tmp_path, monkeypatch, commits):
    """Train the toy DSD run, the trainer of each call seeing the next of ``commits`` as its checkout."""
    config = tmp_path / "conf.yaml"
    config.write_text(CONFIG)
    run_config = load_config(config)
    schedule = Schedule.from_config(run_config.schedule)
    exp = tmp_path / "exp"
    for i, (commit, dirty) in enumerate(commits):
        monkeypatch.setattr(trainer, "environment", lambda c=commit, d=dirty: fake(c, d))
        last = i == len(commits) - 1
        train_run(run_config, schedule, exp, resume=i > 0, until_phase=None if last else i + 1)
    return exp


def test_the_store_keeps_the_code_the_run_trained_with_not_the_code_that_records_it(tmp_path, monkeypatch):
    exp = _train(tmp_path, monkeypatch, [("a", True)])
    rows = json.loads((exp / "results.json").read_text())["phases"]
    assert [row["environment"] for row in rows] == [fake("a", True)] * 3
    monkeypatch.setattr(run_store, "environment", lambda: fake("c", False))  # the checkout has moved on
    record = run_store.run_record(exp, "dsd", seed=0)
    assert (record["git_commit"], record["git_dirty"], record["environment_at"]) == (
        "a" * 40,
        True,
        "training",
    )
    assert "1 of the runs were trained" in comparison_markdown(build_comparison([record]))
    for row in rows:  # results written before rows named their code: the recording checkout, said so
        del row["environment"]
    (exp / "results.json").write_text(
        json.dumps({**json.loads((exp / "results.json").read_text()), "phases": rows})
    )
    old = run_store.run_record(exp, "dsd", seed=0)
    assert (old["git_commit"], old["git_dirty"], old["environment_at"]) == ("c" * 40, False, "recording")


def test_a_run_resumed_under_another_commit_names_both(tmp_path, monkeypatch):
    exp = _train(tmp_path, monkeypatch, [("a", False), ("b", False)])
    rows = json.loads((exp / "results.json").read_text())["phases"]
    assert [row["environment"]["git_commit"][0] for row in rows] == ["a", "b", "b"]
    record = run_store.run_record(exp, "dsd", seed=0)
    assert record["git_commit"] == "b" * 40 and record["git_commits"] == ["a" * 40, "b" * 40]
    table = build_comparison([record])
    assert table["environment"]["git_commits"] == ["a" * 40, "b" * 40]


def test_the_report_says_which_dirty_runs_were_trained_and_which_recorded_so(tmp_path, monkeypatch):
    exp = _train(tmp_path, monkeypatch, [("a", True)])
    trained = run_store.run_record(exp, "dsd", seed=0)
    results = json.loads((exp / "results.json").read_text())
    for row in results["phases"]:
        del row["environment"]
    (exp / "results.json").write_text(json.dumps(results))
    monkeypatch.setattr(run_store, "environment", lambda: fake("a", True))
    recorded = run_store.run_record(exp, "dsd", seed=1)  # as a store written before rows named their code
    table = build_comparison([trained, recorded])
    assert table["environment"]["git_dirty_runs"] == 2 and table["environment"]["git_dirty_trained"] == 1
    assert "when 1 of the runs were trained and 1 of the runs were recorded" in comparison_markdown(table)


def test_a_continuation_notes_its_start_so_its_record_has_the_dense_stage_after_a_resume(tmp_path):
    config = tmp_path / "conf.yaml"
    config.write_text(CONFIG)
    run_config = load_config(config)
    schedule = Schedule.from_config(run_config.schedule)
    train_run(run_config, schedule, tmp_path / "base", until_phase=1)
    start = tmp_path / "base" / "checkpoints" / "phase1-end.pt"
    train_run(run_config, schedule, tmp_path / "cont", init_from=start, until_phase=2)
    train_run(run_config, schedule, tmp_path / "cont", resume=True)  # without --init-from this time
    results = json.loads((tmp_path / "cont" / "results.json").read_text())
    assert results["started_from"] == str(start.resolve())
    record = run_store.run_record(tmp_path / "cont", "dsd")  # nobody tells it where the run started
    dense = last_epoch_train_loss(tmp_path / "base" / "metrics.jsonl")[0]
    assert record["train_loss"]["0"] == dense and set(record["train_loss"]) == {"0", "1", "2"}
    assert run_store.checkpoint_run_folder(tmp_path / "elsewhere.pt") is None  # no run's log beside it
