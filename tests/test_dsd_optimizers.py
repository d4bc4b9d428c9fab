"""The sparse constraint under every optimizer the recipes use: pruned weights stay exactly zero through
every sparse step, and re-dense restarts them at zero and trains them."""

import pytest
import torch

from dsd_seq.core import dsd as dsd_module
from dsd_seq.core.dsd import DSD
from dsd_seq.core.masks import SECOND_MOMENTS, MaskSet
from dsd_seq.core.schedule import Schedule
from dsd_seq.training.config import load_config
from dsd_seq.training.optimizer import build_optimizer
from tests.toy_task import ToyTask

OPTIMIZERS = [
    ("sgd", 0.0, 0.0),
    ("nesterov", 1e-4, 0.0),
    ("adam", 1e-4, 1.0),
    ("adamw", 0.05, 0.5),
    ("rmsprop", 1.0e-8, 5.0),  # NeuralTalk's solver and weight decay (the Flickr8k recipe)
]
# RMSProp without bias correction moves every weight by about lr / sqrt(1 - 0.999) = 32 x lr at first: at
# the others' rates it saturates the toy model's GRU, so it trains at 1/20 of them (still 1.6 x their steps).
LR_SCALE = {"rmsprop": 0.05}


def _setup(optimizer: str, weight_decay: float):
    torch.manual_seed(0)
    task = ToyTask()
    config = load_config(
        None,
        [
            "task=x:y",
            "schedule=D1:1e-3",
            f"train.optimizer={optimizer}",
            f"train.weight_decay={weight_decay}",
        ],
    )
    opt = build_optimizer(task.model, config)
    return task, opt, DSD(task.model, opt)


def _steps(task, opt, dsd, n, clip=0.0, after_each=None):
    for i, batch in enumerate(task.train_batches(torch.Generator().manual_seed(0)) * 4):
        if i == n:
            break
        opt.zero_grad()
        task.loss(batch, "cpu", task.model).backward()
        dsd.mask_gradients()
        if clip:
            torch.nn.utils.clip_grad_norm_(task.model.parameters(), clip)
        opt.step()
        dsd.apply_masks()
        if after_each:
            after_each()


@pytest.mark.parametrize("optimizer, weight_decay, clip", OPTIMIZERS)
def test_pruned_weights_stay_exactly_zero_after_every_step(optimizer, weight_decay, clip):
    task, opt, dsd = _setup(optimizer, weight_decay)
    lr = 0.02 * LR_SCALE.get(optimizer, 1.0)
    schedule = Schedule.parse(f"D1:{lr},S1@0.6:{lr}")
    dsd.enter(schedule[0])
    _steps(task, opt, dsd, 10, clip)  # dense steps build up momentum / Adam moments everywhere
    dsd.enter(schedule[1])
    masks = dsd.masks.masks

    def check():
        for name, p in dsd.params.items():
            assert torch.all(p.detach()[~masks[name]] == 0.0), name
            for key, value in opt.state[p].items():
                if torch.is_tensor(value) and value.shape == p.shape:
                    at_pruned = value[~masks[name]]
                    if key in SECOND_MOMENTS:  # parked at 1.0, decaying by beta2 until parked again
                        assert torch.all((at_pruned > 0.9) & (at_pruned <= 1.0)), f"{key} of {name}"
                    else:
                        assert torch.all(at_pruned == 0.0), f"optimizer state leaks into {name}"

    check()
    _steps(task, opt, dsd, 20, clip, after_each=check)
    kept_moved = any(torch.any(p.detach()[masks[n]] != 0) for n, p in dsd.params.items())
    assert kept_moved


@pytest.mark.parametrize("optimizer, weight_decay, clip", OPTIMIZERS)
def test_redense_restarts_pruned_weights_at_zero_and_trains_them(optimizer, weight_decay, clip):
    task, opt, dsd = _setup(optimizer, weight_decay)
    scale = LR_SCALE.get(optimizer, 1.0)
    schedule = Schedule.parse(f"D1:{0.02 * scale},S1@0.5:{0.02 * scale},D1:{0.005 * scale}")
    dsd.enter(schedule[0])
    _steps(task, opt, dsd, 5, clip)
    dsd.enter(schedule[1])
    _steps(task, opt, dsd, 10, clip)
    pruned = {n: ~m.clone() for n, m in dsd.masks.masks.items()}
    dsd.enter(schedule[2])
    assert not dsd.is_sparse
    assert opt.param_groups[0]["lr"] == 0.005 * scale
    for name, p in dsd.params.items():
        assert torch.all(p.detach()[pruned[name]] == 0.0)
        for value in opt.state[p].values():
            if torch.is_tensor(value) and value.shape == p.shape:
                assert torch.all(value[pruned[name]] == 0.0)
    _steps(task, opt, dsd, 10, clip)
    revived = sum(int((p.detach()[pruned[n]] != 0).sum()) for n, p in dsd.params.items())
    total = sum(int(m.sum()) for m in pruned.values())
    assert revived > 0.5 * total


def test_step_helper_keeps_constraint():
    task, opt, dsd = _setup("adam", 0.0)
    dsd.prune(0.7)
    for batch in task.train_batches(torch.Generator().manual_seed(1)):
        opt.zero_grad()
        task.loss(batch, "cpu", task.model).backward()
        dsd.step()
    _, total = dsd.sparsity()
    assert total >= 0.7 - 1e-3


@pytest.mark.parametrize("optimizer, weight_decay, clip", OPTIMIZERS)
def test_parking_second_moments_changes_no_result(optimizer, weight_decay, clip, monkeypatch):
    """Second moments parked at 1.0 where pruned (a CPU speed fix) give bit-identical weights and kept
    optimizer state through dense, sparse, a lower sparsity (which revives weights) and re-dense."""
    scale = LR_SCALE.get(optimizer, 1.0)
    schedule = Schedule.parse(
        f"D1:{0.02 * scale},S1@0.6:{0.02 * scale},S1@0.3:{0.02 * scale},D1:{0.005 * scale}"
    )

    def run() -> list[list[torch.Tensor]]:
        task, opt, dsd = _setup(optimizer, weight_decay)
        snapshots = []
        for phase in schedule:
            dsd.enter(phase)
            _steps(task, opt, dsd, 6, clip)
            snapshots.append([p.detach().clone() for p in task.model.parameters()])
            snapshots.append(
                [v.clone() for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
            )
        return snapshots

    monkeypatch.setattr(dsd_module, "PARK_EVERY", 2)  # re-park often, so that path runs too
    parked = run()
    monkeypatch.setattr(MaskSet, "park_second_moments_", lambda self, optimizer, again=True: None)
    unparked = run()
    for i, (got, want) in enumerate(zip(parked, unparked, strict=True)):
        if i % 2 == 0 or i == len(parked) - 1:  # weights after every phase; all state once re-dense
            assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True)), f"snapshot {i}"


def test_second_moments_created_after_pruning_are_parked_at_their_first_step():
    """A fresh optimizer (or one whose state a phase boundary reset) creates its moments at the first
    step, as zeros: they are parked there, not 100 steps later."""
    task, opt, dsd = _setup("adam", 0.0)
    dsd.prune(0.5)
    assert not opt.state  # no state yet: nothing to park
    _steps(task, opt, dsd, 1)
    for name, p in dsd.params.items():
        pruned = ~dsd.masks.masks[name]
        assert torch.all(opt.state[p]["exp_avg_sq"][pruned] == 1.0)
        assert torch.all(opt.state[p]["exp_avg"][pruned] == 0.0) and torch.all(p.detach()[pruned] == 0.0)
