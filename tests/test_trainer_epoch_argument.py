"""The trainer keeps the Task protocol (dsd_seq.training.task): ``train_batches(generator, epoch)`` gets the
run's epoch (SortaGrad needs the run's epoch 0), counting across phases and across a resumption; ``loss``
gets the module to run; ``splits`` bounds ``train.eval_splits``; ``task.model`` is never replaced."""

import pytest
import torch

from dsd_seq.core.schedule import Schedule
from dsd_seq.training.config import load_config
from dsd_seq.training.trainer import Trainer, TrainingError
from tests.toy_task import ToyTask


class RecordingTask(ToyTask):
    def __init__(self):
        super().__init__(n=16, batch_size=8)
        self.epochs_seen: list[int] = []
        self.models_seen: set[int] = set()

    def train_batches(self, generator: torch.Generator, epoch: int):
        self.epochs_seen.append(epoch)
        return super().train_batches(generator, epoch)

    def loss(self, batch, device, model):
        self.models_seen.add(id(model))
        return super().loss(batch, device, model)


def _config(*extra):
    return load_config(
        None, ["task=tests.toy_task:build_toy_task", "schedule=D1:1e-3", "train.tensorboard=false",
               "train.progress=false", *extra],
    )  # fmt: skip


def test_train_batches_gets_the_run_epoch_across_phases_and_resumption(tmp_path):
    schedule = Schedule.parse("D2:0.01,S1@0.5:0.01,D2:0.001")
    task = RecordingTask()
    Trainer(task, schedule, _config(), tmp_path / "exp").run(stop_after_steps=5)  # stops in epoch 2
    resumed = RecordingTask()
    Trainer(resumed, schedule, _config(), tmp_path / "exp").run(resume=True)
    assert task.epochs_seen == [0, 1, 2]
    assert resumed.epochs_seen == [2, 3, 4]


def test_loss_runs_the_module_it_is_given_and_task_model_stays_the_model(tmp_path):
    task = RecordingTask()
    model = task.model
    rows = Trainer(task, Schedule.parse("D1:0.01,S1@0.5:0.01"), _config(), tmp_path / "exp").run()
    assert len(rows) == 2 and task.calls == 4
    assert task.models_seen == {id(model)} and task.model is model  # one process: the plain model


def test_eval_splits_must_be_splits_of_the_task(tmp_path):
    task = RecordingTask()
    task.splits = ("train", "test")
    with pytest.raises(TrainingError, match=r"train.eval_splits names \['dev'\].*only \['train', 'test'\]"):
        Trainer(task, Schedule.parse("D1:0.01"), _config("train.eval_splits=[dev, test]"), tmp_path / "e")
