"""DSD in a plain PyTorch loop through ``dsd_optimizer``: the sparse constraint under GradScaler, clipping,
``zero_grad(set_to_none=True)`` and LR schedulers, phases by epoch or by step, and exact resume."""

import pytest
import torch
from torch import nn

from dsd_seq.core.masked_optimizer import MaskedOptimizer, dsd_optimizer
from dsd_seq.core.schedule import Schedule
from tests.toy_task import ToyRecurrentNet

SCHEDULE = "D2:0.01,S2@0.5:0.005,D2:0.002"


def _data(n=16, batch=8):
    g = torch.Generator().manual_seed(1)
    x, tokens = torch.randn(n, 5, 6, generator=g), torch.randint(0, 4, (n, 5), generator=g)
    y = (x[:, :, 0].sum(1) > 0).long()
    return [(x[i : i + batch], tokens[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def _make(schedule=SCHEDULE, unit="epoch", seed=0):
    torch.manual_seed(seed)
    model = ToyRecurrentNet()
    return model, dsd_optimizer(
        model, torch.optim.AdamW(model.parameters(), weight_decay=0.01), schedule, unit=unit
    )


def _train_epoch(model, opt, scaler, after_step=None):
    for x, tokens, y in _data():
        opt.zero_grad(set_to_none=True)
        scaler.scale(nn.functional.cross_entropy(model(x, tokens), y)).backward()
        scaler.unscale_(opt)
        opt.mask_gradients()  # before clipping: pruned gradients stay out of the norm
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        scaler.step(opt)
        scaler.update()
        if after_step:
            after_step()


def _zeros_hold(opt):
    for name, p in opt.dsd.params.items():
        assert torch.all(p.detach()[~opt.dsd.masks.masks[name]] == 0), name


def test_dense_sparse_redense_through_the_wrapper_with_grad_scaler_and_clipping():
    model, opt = _make()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    schedule = Schedule.parse(SCHEDULE)
    measured, pruned = [], None
    for epoch in range(schedule.total_epochs):
        opt.begin_epoch(epoch)
        phase = opt.phases.phase
        assert all(g["lr"] == phase.lr for g in opt.param_groups), "the phase LR is applied"
        if opt.phases.label == "Re-dense" and epoch == 4:
            assert all(torch.all(p.detach()[pruned[n]] == 0) for n, p in opt.dsd.params.items()), (
                "re-dense starts from exactly zero"
            )
        after = (lambda: _zeros_hold(opt)) if opt.dsd.is_sparse else None
        _train_epoch(model, opt, scaler, after)
        if opt.dsd.is_sparse:
            pruned = {n: ~m for n, m in opt.dsd.masks.masks.items()}
        measured.append(opt.dsd.sparsity()[1])
    assert measured[0] == 0.0 and measured[2] == pytest.approx(0.5, abs=0.01) and measured[3] == measured[2]
    revived = sum(int(torch.count_nonzero(p.detach()[pruned[n]])) for n, p in opt.dsd.params.items())
    assert revived > 0 and measured[5] < measured[3] / 4, "re-dense trains the pruned weights again"
    assert opt.steps == 6 * len(_data())


def test_a_step_the_grad_scaler_skips_changes_nothing():
    model, opt = _make("S1@0.5:0.01")
    opt.begin_epoch(0)
    scaler = torch.amp.GradScaler("cpu")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x, tokens, y = _data()[0]
    opt.zero_grad()
    scaler.scale(nn.functional.cross_entropy(model(x, tokens), y) * float("inf")).backward()
    scaler.step(opt)
    assert opt.steps == 0
    assert all(torch.equal(before[n], p.detach()) for n, p in model.named_parameters())
    _zeros_hold(opt)


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    model_a, opt_a = _make()
    for epoch in range(6):
        opt_a.begin_epoch(epoch)
        _train_epoch(model_a, opt_a, scaler)

    model_b, opt_b = _make()
    for epoch in range(3):  # stop in the middle of the sparse phase
        opt_b.begin_epoch(epoch)
        _train_epoch(model_b, opt_b, scaler)
    torch.save({"model": model_b.state_dict(), "opt": opt_b.state_dict()}, tmp_path / "ckpt.pt")

    model_c, opt_c = _make(seed=123)  # other initial weights: everything must come from the checkpoint
    state = torch.load(tmp_path / "ckpt.pt")
    model_c.load_state_dict(state["model"])
    opt_c.load_state_dict(state["opt"])
    assert opt_c.dsd.is_sparse and opt_c.phases.phase_index == 1
    for epoch in range(3, 6):
        opt_c.begin_epoch(epoch)
        _train_epoch(model_c, opt_c, scaler)
    for (name, a), c in zip(model_a.state_dict().items(), model_c.state_dict().values(), strict=True):
        assert torch.equal(a, c), name


def test_phases_by_optimizer_steps_and_schedulers_rebased_to_the_phase_lr():
    torch.manual_seed(0)
    model = ToyRecurrentNet()
    inner = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    constant = torch.optim.lr_scheduler.LambdaLR(inner, lambda step: 1.0)  # would restore lr=1.0 each step
    opt = dsd_optimizer(model, inner, "D3:0.1,S2@0.6:0.05,D3:0.01", unit="step", schedulers=[constant])
    seen = []
    for x, tokens, y in _data() * 4:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x, tokens), y).backward()
        opt.step()
        constant.step()
        seen.append((opt.phases.label, inner.param_groups[0]["lr"], round(opt.dsd.sparsity()[1], 2)))
    assert [s[0] for s in seen] == ["Dense"] * 3 + ["Sparse"] * 2 + ["Re-dense"] * 3
    assert [s[1] for s in seen] == [0.1] * 3 + [0.05] * 2 + [0.01] * 3
    assert seen[3][2] == seen[4][2] == pytest.approx(0.6, abs=0.01)


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_exponential_scheduler_on_the_inner_optimizer_scales_the_phase_lr():
    model, opt = _make("D2:0.01,S1@0.5:0.004")
    decay = torch.optim.lr_scheduler.ExponentialLR(opt.optimizer, gamma=0.5)
    lrs = []
    for epoch in range(3):
        opt.begin_epoch(epoch)
        lrs.append(opt.param_groups[0]["lr"])
        decay.step()
    assert lrs == [0.01, 0.005, 0.004]


def test_mistakes_are_named():
    model, opt = _make()
    x, tokens, y = _data()[0]
    nn.functional.cross_entropy(model(x, tokens), y).backward()
    with pytest.raises(RuntimeError, match="call begin_epoch"):
        opt.step()
    with pytest.raises(RuntimeError, match="phases cannot be skipped"):
        opt.begin_epoch(3)
    with pytest.raises(ValueError, match="plain optimizer's state_dict"):
        opt.load_state_dict(opt.optimizer.state_dict())
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="different optimizer"):
        MaskedOptimizer(other, opt.dsd)


def test_import_dsd_seq_imports_no_training_framework():
    import subprocess
    import sys

    code = (
        "import sys, dsd_seq, dsd_seq.core.masked_optimizer, dsd_seq.integrations; "
        "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'transformers', 'accelerate') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
