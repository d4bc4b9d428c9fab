"""The training loss of each phase's last epoch, read back from a real run's metrics log (the fit the
comparison report sets beside the dev loss)."""

import json

import pytest

from dsd_seq.core.schedule import Schedule
from dsd_seq.experiments.training_fit import last_epoch_train_loss
from tests.toy_task import toy_trainer

STEPS_PER_EPOCH = 8  # the toy task: 64 items in batches of 8


def _train_losses(path):
    return {
        e["step"]: e["loss"] for e in map(json.loads, path.read_text().splitlines()) if e["event"] == "train"
    }


def test_each_phase_reports_the_mean_loss_of_its_last_epoch(tmp_path):
    toy_trainer(tmp_path, Schedule.parse("D2:0.05,S2@0.5:0.05,D1:0.005")).run()
    log = tmp_path / "metrics.jsonl"
    losses = _train_losses(log)
    assert len(losses) == 5 * STEPS_PER_EPOCH
    fit = last_epoch_train_loss(log)
    last_epochs = {0: range(8, 16), 1: range(24, 32), 2: range(32, 40)}  # epochs 2, 4 and 5 of the run
    assert fit.keys() == last_epochs.keys()
    for phase, steps in last_epochs.items():
        assert fit[phase] == sum(losses[s] for s in steps) / STEPS_PER_EPOCH


def test_a_replayed_step_counts_once_with_its_last_value_and_a_torn_line_is_skipped(tmp_path):
    toy_trainer(tmp_path, Schedule.parse("D1:0.05")).run()
    log = tmp_path / "metrics.jsonl"
    before = last_epoch_train_loss(log)[0]
    lines = log.read_text().splitlines()
    replayed = json.loads(next(line for line in lines if '"train"' in line and '"step": 3,' in line))
    first_loss = replayed["loss"]
    replayed["loss"] = first_loss + 8.0  # as if a resumed run trained step 3 again
    end = next(i for i, line in enumerate(lines) if '"phase_end"' in line)
    lines.insert(end, json.dumps(replayed))
    log.write_text("\n".join(lines) + '\n{"event": "train", "st')
    assert last_epoch_train_loss(log)[0] == pytest.approx(
        before + 1.0, rel=1e-12
    )  # (+8 on one of 8 steps), counted once
    assert last_epoch_train_loss(tmp_path / "missing.jsonl") == {}
