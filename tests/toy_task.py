"""A tiny sequence-classification task for engine tests: a GRU over random sequences whose class is
the sign pattern of a few input features. Small enough to train in a second, real enough to learn."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn


class ToyRecurrentNet(nn.Module):
    def __init__(self, features: int = 6, hidden: int = 16, classes: int = 3, batch_norm: bool = False):
        super().__init__()
        self.bn = nn.BatchNorm1d(features) if batch_norm else nn.Identity()
        self.embed = nn.Embedding(4, features)
        self.conv = nn.Conv1d(features, features, 3, padding=1)
        self.gru = nn.GRU(features, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.norm = nn.LayerNorm(2 * hidden)
        self.fc = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        x = x + self.embed(tokens)
        x = self.conv(self.bn(x.transpose(1, 2))).transpose(1, 2)
        h, _ = self.gru(x)
        return self.out(torch.relu(self.fc(self.norm(h[:, -1]))))


class ToyTask:
    metric = "error"
    higher_is_better = False
    splits = ("train", "dev", "test")  # all score the same items: the toy has no held-out data

    def __init__(
        self,
        n: int = 64,
        batch_size: int = 8,
        seed: int = 0,
        dropout_noise: bool = True,
        batch_norm: bool = False,
    ):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 5, 6, generator=g)
        self.tokens = torch.randint(0, 4, (n, 5), generator=g)
        self.y = (self.x[:, :, 0].sum(1) > 0).long() + (self.x[:, :, 1].sum(1) > 1).long()
        self.batch_size = batch_size
        self.dropout_noise = dropout_noise
        self.model = ToyRecurrentNet(batch_norm=batch_norm)
        self.nan_batches: set[int] = set()  # batches holding these items get NaN inputs
        self.nan_gradient_batches: set[int] = set()  # finite loss, NaN gradient
        self.loss_scale = 1.0  # e.g. 1e30: a finite loss whose gradient makes the update overflow
        self.fail_at_call: int | None = None  # the loss call (1-based) that raises, like a data error
        self.calls = 0

    def train_batches(self, generator: torch.Generator, epoch: int = 0):
        order = torch.randperm(len(self.y), generator=generator)
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def loss(self, batch, device, model):
        self.calls += 1
        stall = os.environ.get("TOY_STALL_AFTER_CALLS")  # crash tests: hang here until SIGKILLed
        if stall and self.calls > int(stall):
            Path(os.environ["TOY_STALL_FILE"]).touch()
            time.sleep(600)
        if self.calls == self.fail_at_call:
            raise RuntimeError("simulated failure while loading a batch")
        x = self.x[batch].to(device)
        if self.dropout_noise:  # consumes the global RNG, as dropout would
            x = x + 0.01 * torch.randn_like(x)
        if any(int(i) in self.nan_batches for i in batch):
            x = x * float("nan")
        logits = model(x, self.tokens[batch].to(device))
        loss = nn.functional.cross_entropy(logits, self.y[batch].to(device))
        if any(int(i) in self.nan_gradient_batches for i in batch):
            loss = loss + (0 * self.model.out.weight.sum()).abs().sqrt()  # value 0, gradient inf * 0 = NaN
        return loss * self.loss_scale

    def evaluate(self, split, device):
        pred = self.model(self.x.to(device), self.tokens.to(device)).argmax(1).cpu()
        return {"error": float((pred != self.y).float().mean() * 100)}

    def data_summary(self):
        return {"utterances": len(self.y)}


def build_toy_task(**kwargs) -> ToyTask:
    return ToyTask(**kwargs)


class ScriptedDevLossTask(ToyTask):
    """The toy task whose dev split reports a scripted loss: ``script[e]`` after the run's epoch ``e``
    (counted across phases), for testing phases that end at convergence."""

    def __init__(self, script, **kwargs):
        super().__init__(**kwargs)
        self.script = list(script)
        self.epoch = -1

    def train_batches(self, generator, epoch=0):
        self.epoch = epoch
        return super().train_batches(generator, epoch)

    def evaluate(self, split, device):
        scores = super().evaluate(split, device)
        if split == "dev":
            scores["loss"] = self.script[self.epoch]
        return scores


def build_scripted_task(script, **kwargs) -> ScriptedDevLossTask:
    return ScriptedDevLossTask(script, **kwargs)


def toy_trainer(exp_dir: Path, schedule, extra=(), task: ToyTask | None = None):
    """A Trainer on the toy task (seed 0, Nesterov, clip 1.0, no TensorBoard); ``extra``: more --set options."""
    from dsd_seq.training.config import load_config
    from dsd_seq.training.trainer import Trainer

    torch.manual_seed(0)
    config = load_config(
        None,
        [
            "task=tests.toy_task:build_toy_task",
            "schedule=D1:1e-3",
            "train.tensorboard=false",
            "train.progress=false",
            "train.optimizer=nesterov",
            "train.grad_clip=1.0",
            *extra,
        ],
    )
    return Trainer(task or ToyTask(), schedule, config, exp_dir)


def train_in_pieces(make_trainer, stops: list[int]):
    """A run interrupted at each global step in ``stops``: every piece is a new trainer from
    ``make_trainer()`` resuming the last checkpoint, then one more trains to the end. Returns the pieces'
    trainers (as they stopped), the last trainer and its results rows."""
    pieces, previous = [], 0
    for stop in stops:
        trainer = make_trainer()
        trainer.run(resume=previous > 0, stop_after_steps=stop - previous)
        assert trainer.position.global_step == stop
        pieces.append(trainer)
        previous = stop
    resumed = make_trainer()
    return pieces, resumed, resumed.run(resume=True)
