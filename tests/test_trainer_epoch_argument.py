"""The trainer tells tasks that accept it which epoch of the run a batch order is for (SortaGrad needs the
run's epoch 0), counting across phases and across a resumption; tasks without the argument still work."""

import torch

from dsd_seq.core.schedule import Schedule
from dsd_seq.training.config import load_config
from dsd_seq.training.trainer import Trainer
from tests.toy_task import ToyTask


class EpochRecordingTask(ToyTask):
    def __init__(self):
        super().__init__(n=16, batch_size=8)
        self.epochs_seen: list[int] = []

    def train_batches(self, generator: torch.Generator, epoch: int | None = None):
        self.epochs_seen.append(epoch)
        return super().train_batches(generator)


def _config():
    return load_config(
        None, ["task=tests.toy_task:build_toy_task", "schedule=D1:1e-3", "train.tensorboard=false",
               "train.progress=false"],
    )  # fmt: skip


def test_tasks_taking_epoch_get_the_run_epoch_across_phases_and_resumption(tmp_path):
    schedule = Schedule.parse("D2:0.01,S1@0.5:0.01,D2:0.001")
    task = EpochRecordingTask()
    Trainer(task, schedule, _config(), tmp_path / "exp").run(stop_after_steps=5)  # stops in epoch 2
    resumed = EpochRecordingTask()
    Trainer(resumed, schedule, _config(), tmp_path / "exp").run(resume=True)
    assert task.epochs_seen == [0, 1, 2]
    assert resumed.epochs_seen == [2, 3, 4]


def test_tasks_without_the_epoch_argument_still_train(tmp_path):
    task = ToyTask(n=16, batch_size=8)
    rows = Trainer(task, Schedule.parse("D1:0.01,S1@0.5:0.01"), _config(), tmp_path / "exp").run()
    assert len(rows) == 2 and task.calls == 4
