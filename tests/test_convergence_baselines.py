"""The baselines of a schedule whose phases end at convergence (issue 12): LLR and fine-tuning train the
epochs the DSD run realized (equal epochs, Sec. 5.2), planned per seed after that run has finished."""

import json

import pytest

from dsd_seq.core.schedule import Schedule
from dsd_seq.experiments.compare import execute, plan_runs, plan_seed
from dsd_seq.experiments.comparison_table import build_comparison, comparison_markdown
from dsd_seq.experiments.training_fit import last_epoch_train_loss
from dsd_seq.training.config import ConfigError, load_config
from dsd_seq.training.run import train_run

# run epochs 0-4: the dense phase's dev loss bottoms out after its 3rd epoch, so with patience 2 it ends
# after 5 of at most 8; the sparse phase stalls after its first (epoch 5) and ends after 3 of at most 6.
SCRIPT = [5.0, 4.0, 3.0, 3.5, 3.2] + [2.0, 2.5, 2.6] + [1.0] * 10
SCHEDULE = "D..8:0.01/patience=2,S..6@0.5:0.01/patience=2,D2:0.001"
CONFIG = f"""\
task: tests.toy_task:build_scripted_task
task_args: {{script: {SCRIPT}}}
schedule: "{SCHEDULE}"
train:
  optimizer: nesterov
  num_threads: 1
  progress: false
  tensorboard: false
  eval_splits: [dev, test]
"""


def _rows(exp_dir):
    return json.loads((exp_dir / "results.json").read_text())


def test_realized_epochs_drive_the_llr_and_final_lr_schedules():
    schedule = Schedule.parse(SCHEDULE)
    realized = schedule.realized([5, 2, 2])
    assert realized.llr().compact() == "D5:0.01,D2:0.01,D2:0.001"
    assert realized.final_lr_control().compact() == "D5:0.01,D2:0.001,D2:0.001"
    assert schedule.llr().compact() == "D..8:0.01/patience=2,D..6:0.01/patience=2,D2:0.001"  # llr-converge
    with pytest.raises(ValueError, match="realized epochs 9 are not in 1..8"):
        schedule.realized([9])


def test_compare_trains_the_baselines_for_the_epochs_dsd_realized(tmp_path):
    config = tmp_path / "conf.yaml"
    config.write_text(CONFIG)
    schedule = Schedule.from_config(load_config(config).schedule)
    runs = plan_seed(config, schedule, tmp_path / "seed0", 0, [], [])
    assert [(r.kind, r.after and r.after.kind) for r in runs] == [
        ("dense", None), ("dsd", "dense"), ("llr", "dsd"), ("final_lr", "dsd"),
    ]  # fmt: skip
    assert execute(runs, jobs=1, store=tmp_path / "runs.jsonl") == []
    dsd = _rows(tmp_path / "seed0" / "dsd")
    assert [r["epochs"] for r in dsd["phases"]] == [5, 3, 2]
    assert dsd["realized_schedule"] == "D5:0.01,S3@0.5:0.01,D2:0.001"
    llr, final_lr = _rows(tmp_path / "seed0" / "llr"), _rows(tmp_path / "seed0" / "final_lr")
    assert llr["schedule"] == "D5:0.01,D3:0.01,D2:0.001"
    assert final_lr["schedule"] == "D5:0.01,D3:0.001,D2:0.001"
    for run in (llr, final_lr):
        assert [r["cumulative_epochs"] for r in run["phases"]] == [5, 8, 10]
        assert run["phases"][0]["metrics"] == dsd["phases"][0]["metrics"]  # the shared dense phase
    store = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert {r["kind"]: [p["epochs"] for p in r["phases"]] for r in store} == {
        "dsd": [5, 3, 2], "llr": [5, 3, 2], "final_lr": [5, 3, 2],
    }  # fmt: skip
    fit = {r["kind"]: sorted(r["train_loss"]) for r in store}  # the baselines' phase 1: the dense run's
    assert fit == {"dsd": ["0", "1", "2"], "llr": ["0", "1", "2"], "final_lr": ["0", "1", "2"]}
    assert len({r["train_loss"]["0"] for r in store}) == 1
    table = build_comparison(store)
    assert table["epochs"]["LLR"] == {"0": [5, 3, 2]}
    assert table["fit"][1]["DSD"]["train_loss"] == store[0]["train_loss"]["1"]
    markdown = comparison_markdown(table)
    assert "seed 0: 5/3/2" in markdown and "Optimizer state at phase boundaries" in markdown


def test_an_equal_epoch_baseline_of_a_converging_schedule_needs_the_realized_epochs(tmp_path):
    config = tmp_path / "conf.yaml"
    config.write_text(CONFIG)
    run_config = load_config(config)
    schedule = Schedule.from_config(run_config.schedule)
    with pytest.raises(ConfigError, match="--epochs-from DSD_EXP_DIR/results.json"):
        train_run(run_config, schedule, tmp_path / "llr", baseline="llr")
    partial = tmp_path / "results.json"
    partial.write_text(json.dumps({"phases": [{"epochs": 5}]}))
    with pytest.raises(ConfigError, match="finished 1 of the 3 phases"):
        train_run(run_config, schedule, tmp_path / "llr", baseline="llr", epochs_from=partial)


def test_the_shared_baseline_design_follows_each_seeds_dsd_run_for_its_realized_epochs(tmp_path):
    config = tmp_path / "conf.yaml"
    config.write_text(CONFIG)
    schedule = Schedule.from_config(load_config(config).schedule)
    runs = plan_runs(config, schedule, [0, 1], tmp_path, [], [], design="shared-baseline")
    baseline, *continuations = runs
    by_name = {r.name: r for r in continuations}
    assert by_name["seed 1 dsd"].after is baseline  # DSD continues the one dense baseline
    assert by_name["seed 1 llr"].after is by_name["seed 1 dsd"]  # LLR waits for the epochs DSD realizes
    assert execute(runs, jobs=1, store=tmp_path / "runs.jsonl") == []
    for seed in (0, 1):
        dsd, llr = _rows(tmp_path / f"seed{seed}" / "dsd"), _rows(tmp_path / f"seed{seed}" / "llr")
        assert [r["epochs"] for r in llr["phases"]] == [r["epochs"] for r in dsd["phases"]]
        assert llr["phases"][0]["metrics"] == dsd["phases"][0]["metrics"]  # both start from the baseline
    store = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    baseline_loss = last_epoch_train_loss(baseline.exp_dir / "metrics.jsonl")[0]
    assert [r["train_loss"]["0"] for r in store] == [baseline_loss] * 4  # the fit table's dense stage
    assert build_comparison(store)["fit"][0]["DSD"]["train_loss"] == baseline_loss
