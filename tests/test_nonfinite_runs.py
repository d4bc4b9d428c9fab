"""Runs that skip most of their steps must fail, not end rc 0 with a table of untrained scores; and a step
that would make the weights or the optimizer state non-finite is undone, so no checkpoint holds NaN/inf."""

import pytest
import torch

from dsd_seq.cli import main
from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import load_safely
from dsd_seq.training.metrics_log import read_metrics
from dsd_seq.training.pre_step_copy import PreStepCopy
from dsd_seq.training.trainer import TrainingError
from tests.toy_task import ToyTask, toy_trainer

SHORT_EPOCHS = dict(n=16, batch_size=8)  # 2 steps an epoch: shorter than any max_nonfinite_steps


def _config(tmp_path, lr: str, extra: str = "") -> str:
    path = tmp_path / "config.yaml"
    path.write_text(
        "task: tests.toy_task:build_toy_task\n"
        "task_args: {n: 16, batch_size: 8}\n"
        f"schedule: D8:{lr},S2@0.5:{lr}\n"
        "train: {optimizer: sgd, progress: false, tensorboard: false, eval_splits: [test]" + extra + "}\n"
    )
    return str(path)


def test_a_huge_learning_rate_makes_the_run_fail_clearly(tmp_path, capsys):
    """lr 1e6 on short epochs: nearly every step is skipped, never 20 in a row within one epoch."""
    code = main(["train", "--config", _config(tmp_path, "1e6"), "--exp-dir", str(tmp_path / "exp")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "TrainingError" in err and "were not updated" in err and "lower the learning rate" in err
    assert not (tmp_path / "exp" / "results.json").exists()  # no table of untrained scores
    state = load_safely(tmp_path / "exp" / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_the_same_run_at_a_sane_learning_rate_passes(tmp_path, capsys):
    code = main(["train", "--config", _config(tmp_path, "0.01"), "--exp-dir", str(tmp_path / "exp")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "exp" / "results.json").is_file()


def test_skipped_steps_in_a_row_are_counted_across_epochs(tmp_path):
    task = ToyTask(**SHORT_EPOCHS)
    task.nan_batches = set(range(16))
    extra = ["train.max_nonfinite_steps=3", "train.max_nonfinite_fraction=1"]  # the share alone never stops
    trainer = toy_trainer(tmp_path / "exp", Schedule.parse("D5:0.01"), extra, task)
    with pytest.raises(TrainingError, match=r"3 consecutive steps.*phase 1, epoch 2, batch 0"):
        trainer.run()


def test_a_phase_share_of_skipped_steps_above_the_limit_stops_at_the_epoch_end(tmp_path):
    task = ToyTask()  # 8 steps an epoch
    task.nan_batches = set(range(64))
    extra = ["train.max_nonfinite_steps=1000", "train.max_nonfinite_fraction=0.5"]
    trainer = toy_trainer(tmp_path / "exp", Schedule.parse("D3:0.01"), extra, task)
    with pytest.raises(
        TrainingError, match=r"phase 1 \(Dense\), epoch 1: 8 of 8 steps .*max_nonfinite_fraction=0.5"
    ):
        trainer.run()
    # the counts are in the checkpoint: a resumed run goes on counting instead of starting afresh
    assert load_safely(tmp_path / "exp" / "checkpoints" / "last.pt")["nonfinite_counts"] == {
        "in_a_row": 8, "phase_skipped": 8, "phase_steps": 8
    }  # fmt: skip


def test_a_share_below_the_limit_trains_on(tmp_path):
    task = ToyTask()
    task.nan_batches = {0}  # one batch of 8 per epoch: 12.5%, under the default 0.25
    trainer = toy_trainer(tmp_path / "exp", Schedule.parse("D2:0.01"), (), task)
    trainer.run()
    assert trainer.finished and trainer.nonfinite_total == 2


def test_a_step_that_would_make_the_weights_non_finite_is_undone(tmp_path):
    task = ToyTask()
    task.loss_scale = 1e15  # finite loss, gradient and gradient norm (~1e16); times lr 1e25: inf weights
    extra = ["train.optimizer=sgd", "train.grad_clip=0", "train.max_nonfinite_steps=4"]
    trainer = toy_trainer(tmp_path / "exp", Schedule.parse("D1:1e25"), extra, task)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(TrainingError, match="4 consecutive steps.*the weights were not updated"):
        trainer.run()
    state = load_safely(tmp_path / "exp" / "checkpoints" / "last.pt")
    for name, value in before.items():  # the message is true: not one weight moved
        assert torch.equal(state["model"][name], value), name
    events = [r["event"] for r in read_metrics(tmp_path / "exp" / "metrics.jsonl")]
    assert events.count("nonfinite") == 4 and "train" not in events


def test_a_step_that_leaves_the_optimizer_state_non_finite_is_undone_state_and_all():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    copy = PreStepCopy(model, optimizer)

    def step():
        optimizer.zero_grad()
        model(torch.ones(1, 3)).sum().backward()
        copy.take()
        optimizer.step()

    step()
    assert copy.finite()
    with torch.no_grad():
        model.bias[0] = 1e30  # huge but finite (its square overflows): still finite
    assert copy.finite()
    weights = [p.detach().clone() for p in model.parameters()]
    moments = [optimizer.state[p]["exp_avg_sq"].clone() for p in model.parameters()]
    step()
    optimizer.state[model.weight]["exp_avg_sq"][0, 0] = float("inf")  # as an overflowing moment would be
    assert not copy.finite()
    copy.restore()
    assert copy.finite()
    for p, w, m in zip(model.parameters(), weights, moments, strict=True):
        assert torch.equal(p, w) and torch.equal(optimizer.state[p]["exp_avg_sq"], m)
        assert int(optimizer.state[p]["step"]) == 1
    fresh = torch.optim.Adam(model.parameters(), lr=0.1)  # a first step creates the state: undone, it is gone
    copy = PreStepCopy(model, fresh)
    optimizer = fresh
    step()
    copy.restore()
    assert not fresh.state


class _NanTestSplit(ToyTask):
    def evaluate(self, split, device):
        scores = super().evaluate(split, device)
        return {**scores, "error": float("nan")} if split == "test" else scores


def test_a_non_finite_score_is_written_as_null_with_a_warning(tmp_path, capsys):
    import json

    from dsd_seq.core.schedule import Schedule

    torch.manual_seed(0)
    toy_trainer(
        tmp_path / "exp", Schedule.parse("D1:0.01"), ["train.eval_splits=[dev, test]"], _NanTestSplit()
    ).run()
    text = (tmp_path / "exp" / "results.json").read_text()
    assert "NaN" not in text
    assert json.loads(text)["phases"][0]["metrics"]["test"]["error"] is None
    assert "non-finite values written as null at phases[0].metrics.test.error" in capsys.readouterr().err
