"""Each phase's dev-selected epoch: recorded with its scores on every split, kept as ``phaseN-best.pt``
(exactly that epoch's weights, across a SIGKILL and resume), and handed on with ``train.handover: best``."""

import json
from pathlib import Path

import pytest
import torch

from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import load_safely
from dsd_seq.training.config import ConfigError, load_config
from dsd_seq.training.dev_selection import Monitor, check_select_on
from tests.toy_cli_runs import train_until_killed
from tests.toy_task import ScriptedDevLossTask, toy_trainer

# 8 batches an epoch; the dev loss is scripted per run epoch: the best of the first phase is its 2nd epoch
SCRIPT = [0.9, 0.5, 0.7, 0.8] + [0.6, 0.4] + [0.3, 0.35]


def _trainer(tmp_path, name, schedule, extra=(), noise=True):
    torch.manual_seed(0)  # the same initial weights in every run
    task = ScriptedDevLossTask(SCRIPT, dropout_noise=noise)
    return toy_trainer(
        tmp_path / name, Schedule.parse(schedule), ["train.eval_splits=[dev, test]", *extra], task
    )


def _model(path: Path) -> dict:
    return load_safely(path)["model"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_best_epoch_is_recorded_kept_and_scored_on_every_split(tmp_path):
    rows = _trainer(tmp_path, "run", "D4:0.01,S2@0.5:0.01").run()
    best = rows[0]["best"]
    assert (best["epoch"], best["monitor"], best["value"]) == (2, "dev_loss", 0.5)
    assert set(best["metrics"]) == {"dev", "test"}  # (the scripted dev loss follows the run's epoch)
    assert rows[0]["handover"] == "last" and "last" not in rows[0]
    assert rows[1]["best"]["epoch"] == 2  # the sparse phase's last epoch is its best: 0.4 < 0.6

    # the same seed's first two epochs, as a run of its own: exactly the weights phase1-best.pt holds
    short = tmp_path / "two_epochs"
    _trainer(tmp_path, "two_epochs", "D2:0.01").run()
    checkpoints = tmp_path / "run" / "checkpoints"
    assert _same(_model(checkpoints / "phase1-best.pt"), _model(short / "checkpoints" / "phase1-end.pt"))
    assert load_safely(checkpoints / "phase1-best.pt")["position"]["epoch"] == 2
    assert not _same(_model(checkpoints / "phase1-best.pt"), _model(checkpoints / "phase1-end.pt"))
    # the test score at the best epoch is the model's own, not the last epoch's
    short_rows = json.loads((short / "results.json").read_text())["phases"]
    assert best["metrics"]["test"] == short_rows[0]["metrics"]["test"]
    # the last epoch of the sparse phase is its best: the phase end is named so too
    assert (checkpoints / "phase2-best.pt").samefile(checkpoints / "phase2-end.pt")


def test_handover_best_continues_from_the_best_epoch(tmp_path):
    # no input noise: it draws on the process's random stream, which a handover does not rewind
    rows = _trainer(tmp_path, "best", "D4:0.01,S2@0.5:0.01", ["train.handover=best"], noise=False).run()
    checkpoints = tmp_path / "best" / "checkpoints"
    assert _same(_model(checkpoints / "phase1-end.pt"), _model(checkpoints / "phase1-best.pt"))
    assert rows[0]["handover"] == "best"
    assert rows[0]["metrics"] == rows[0]["best"]["metrics"]
    assert rows[0]["last"]["epoch"] == 4 and rows[0]["last"]["metrics"]["dev"]["loss"] == 0.8
    # the sparse phase starts from the best epoch: the same as a two-epoch run continued by it
    _trainer(tmp_path, "two", "D2:0.01", noise=False).run()
    follow = _trainer(tmp_path, "follow", "D2:0.01,S2@0.5:0.01", noise=False)
    follow.run(init_from=tmp_path / "two" / "checkpoints" / "phase1-end.pt")
    # epoch seeds count phases and epochs alike in both runs; only the position of phase 2 differs
    sparse_best = _model(checkpoints / "phase2-end.pt")
    sparse_follow = _model(tmp_path / "follow" / "checkpoints" / "phase2-end.pt")
    assert _same(sparse_best, sparse_follow)


def test_handover_last_is_the_default_and_unchanged(tmp_path):
    rows = _trainer(tmp_path, "last", "D4:0.01").run()
    checkpoints = tmp_path / "last" / "checkpoints"
    assert rows[0]["metrics"]["dev"]["loss"] == 0.8  # the last epoch's
    assert not _same(_model(checkpoints / "phase1-end.pt"), _model(checkpoints / "phase1-best.pt"))


def test_a_task_without_the_monitored_quantity_selects_nothing_by_default(tmp_path):
    rows = toy_trainer(tmp_path / "toy", Schedule.parse("D2:0.01"), ["train.eval_splits=[dev, test]"]).run()
    assert "best" not in rows[0]
    assert not (tmp_path / "toy" / "checkpoints" / "phase1-best.pt").exists()
    # but a metric named on purpose must exist
    with pytest.raises(Exception, match="train.select_on"):
        toy_trainer(
            tmp_path / "toy2",
            Schedule.parse("D2:0.01"),
            ["train.eval_splits=[dev]", "train.select_on=dev_wer"],
        ).run()


def test_select_on_the_task_metric(tmp_path):
    rows = toy_trainer(
        tmp_path / "err",
        Schedule.parse("D3:0.05"),
        ["train.eval_splits=[dev, test]", "train.select_on=dev_error"],
    ).run()
    errors = rows[0]["best"]
    assert errors["monitor"] == "dev_error" and 1 <= errors["epoch"] <= 3
    assert errors["value"] <= rows[0]["metrics"]["dev"]["error"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("train.select_on=test_loss", "test data"),
        ("train.select_on=loss", "<split>_<metric>"),
        ("train.handover=first", "accepted: last, best"),
    ],
)
def test_bad_selection_options_are_refused_where_the_config_is_read(option, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, ["task=tests.toy_task:build_toy_task", "schedule=D1:1e-3", option])


def test_monitor_direction_and_non_finite_values():
    loss = Monitor("dev", "loss", higher_is_better=False)
    assert loss.improves(1.0, None) and loss.improves(0.5, 1.0) and not loss.improves(1.0, 1.0)
    assert not loss.improves(float("nan"), None) and not loss.improves(float("inf"), 1.0)
    bleu = Monitor("dev", "bleu4", higher_is_better=True)
    assert bleu.improves(30.0, 20.0) and not bleu.improves(10.0, 20.0)
    assert check_select_on("dev_loss") is None


CONFIG = f"""\
task: tests.toy_task:build_scripted_task
task_args: {{script: {SCRIPT}}}
schedule: "D4:0.01,S2@0.5:0.01"
train:
  optimizer: nesterov
  num_threads: 1
  progress: false
  tensorboard: false
  keep_checkpoints: 1
  eval_splits: [dev, test]
"""


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["best-saved:1", "best-saved:2", "phase-end-saved:2"])
def test_the_best_checkpoint_survives_a_sigkill_and_resume(tmp_path, kill_at):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    reference = tmp_path / "reference"
    done = train_until_killed(config, reference)
    assert done.returncode == 0, done.stderr[-3000:]
    exp = tmp_path / "killed"
    # best-saved:1 / :2: the step file of epoch 1 / 2 is written, phase1-best.pt not yet linked to it;
    # phase-end-saved:2: the sparse phase's end (its best too) is written, not yet named
    killed = train_until_killed(config, exp, kill_at)
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = train_until_killed(config, exp)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name in ("phase1-best.pt", "phase2-best.pt", "phase2-end.pt"):
        want, got = reference / "checkpoints" / name, exp / "checkpoints" / name
        assert _same(_model(want), _model(got)), name
        positions = [{**load_safely(f)["position"], "phase_seconds": 0} for f in (want, got)]
        assert positions[0] == positions[1], name
    rows = [json.loads((e / "results.json").read_text())["phases"] for e in (reference, exp)]
    assert [r["best"] for r in rows[0]] == [r["best"] for r in rows[1]]


def test_a_best_checkpoint_that_is_not_the_recorded_step_is_not_used(tmp_path):
    import os

    trainer = _trainer(tmp_path, "swap", "D4:0.01", ["train.handover=best", "train.keep_checkpoints=5"])
    trainer.run(stop_after_steps=24)  # epochs 1-3 done; the best (epoch 2) is kept
    checkpoints = tmp_path / "swap" / "checkpoints"
    os.replace(checkpoints / "step-000000024.pt", checkpoints / "phase1-best.pt.tmp")  # another step's state
    os.link(checkpoints / "phase1-best.pt.tmp", checkpoints / "step-000000024.pt")
    os.replace(checkpoints / "phase1-best.pt.tmp", checkpoints / "phase1-best.pt")
    rows = _trainer(tmp_path, "swap", "D4:0.01", ["train.handover=best", "train.keep_checkpoints=5"]).run(
        resume=True
    )
    assert rows[0]["best"]["epoch"] == 2 and rows[0]["best"]["metrics"] is None  # said, not scored
    assert rows[0]["handover"].startswith("last (")  # and not handed over


def test_select_on_a_split_the_task_lacks_is_refused_before_training(tmp_path):
    from dsd_seq.training.training_error import TrainingError

    with pytest.raises(TrainingError, match="train.select_on='valid_loss' names the split 'valid'"):
        _trainer(tmp_path, "typo", "D1:0.01", ["train.select_on=valid_loss"])


class _RandomEvaluation(ScriptedDevLossTask):
    """Its evaluation draws on torch's generator, as a DataLoader does for its seed."""

    def evaluate(self, split, device):
        torch.rand(1)
        return super().evaluate(split, device)


def test_scoring_the_best_epoch_leaves_the_training_random_streams_alone(tmp_path):
    def final_weights(name, script):
        torch.manual_seed(0)
        task = _RandomEvaluation(script)
        trainer = toy_trainer(
            tmp_path / name, Schedule.parse("D4:0.01,S2@0.5:0.01"), ["train.eval_splits=[dev, test]"], task
        )
        trainer.run()
        return _model(tmp_path / name / "checkpoints" / "phase2-end.pt")

    scored = final_weights("scored", SCRIPT)  # best epoch 2: the phase end scores phase1-best.pt too
    falling = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]  # best = last: nothing extra is scored
    assert _same(scored, final_weights("plain", falling))
