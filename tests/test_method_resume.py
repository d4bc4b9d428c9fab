"""The comparators' phases in the training loop: a run stopped mid-ramp, mid-redraw or mid-alternation
and resumed ends bit-identical to an uninterrupted one, and recurrent layers keep cuDNN-compatible
weights (``_flat_weights`` are the parameters, masked in place, ``flatten_parameters`` works)."""

import pytest
import torch
from torch import nn

from dsd_seq.core.masked_optimizer import dsd_optimizer
from dsd_seq.core.masks import kept_count
from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import load_safely
from tests.toy_task import toy_trainer, train_in_pieces

# the toy task has 8 batches an epoch: phase 2 starts at step 8
SCHEDULES = {
    "gradual": "D1:0.01,G2@0.8:0.01/every=3,D1:0.001",  # masks at phase steps 3, 6, 9, 12 (= ceil(0.75 * 16))
    "rigl": "D1:0.01,R2@0.5:0.01/every=3,D1:0.001",  # redraws at phase steps 3, 6, 9
    "set": "D1:0.01,R2@0.5:0.01/every=3/grow=random,D1:0.001",
    "acdc": "D1:0.01,A4@0.5:0.01/warmup=0/period=1/finetune=1",  # S1, D1, S2
}


def _state(trainer):
    return {
        "model": {k: v.clone() for k, v in trainer.model.state_dict().items()},
        "masks": trainer.dsd.state_dict()["masks"],
        "optimizer": trainer.optimizer.state_dict()["state"],
    }


def _assert_equal(a, b, where=""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_equal(a[key], b[key], f"{where}.{key}")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("method", list(SCHEDULES))
def test_resume_mid_phase_is_bit_identical(tmp_path, method):
    schedule = Schedule.parse(SCHEDULES[method])
    reference = toy_trainer(tmp_path / "uninterrupted", schedule, ["train.optimizer=adam"])
    reference.run()
    # 13: between the updates at phase steps 3 and 6; 18: after the third, one before the fourth
    pieces, resumed, results = train_in_pieces(
        lambda: toy_trainer(tmp_path / "interrupted", schedule, ["train.optimizer=adam"]), [13, 18]
    )
    assert pieces[0].dsd.updates is None or pieces[0].dsd.updates.step == 5
    assert resumed.finished
    _assert_equal(_state(reference), _state(resumed))
    assert [r["metrics"] for r in results] == [r["metrics"] for r in reference.results]
    assert [r["measured_sparsity"] for r in results] == [r["measured_sparsity"] for r in reference.results]


def test_the_trainer_reaches_each_phase_s_sparsity(tmp_path):
    for method, text in SCHEDULES.items():
        trainer = toy_trainer(tmp_path / method, Schedule.parse(text))
        rows = trainer.run()
        for row, phase in zip(rows, trainer.schedule, strict=True):
            if phase.kind == "sparse":
                end = load_safely(tmp_path / method / "checkpoints" / f"phase{row['phase'] + 1}-end.pt")
                for name, mask in end["dsd"]["masks"].items():
                    assert int(mask.sum()) == kept_count(mask.numel(), phase.sparsity), (method, name)
                    assert int(torch.count_nonzero(end["model"][name][~mask])) == 0
                    # exact zeros: the pruned, and grown weights whose gradient stayed 0 (a GRU's reverse
                    # direction read at its first step never gets one from h[:, -1])
                    assert row["layer_sparsity"][name] >= round(1 - int(mask.sum()) / mask.numel(), 6)
        assert [r["label"] for r in rows][1] == {"gradual": "Gradual", "rigl": "RigL", "set": "SET"}.get(
            method, "Sparse"
        )


class _Recurrent(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(3, 5, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(10, 2)

    def forward(self, x):
        return self.out(self.rnn(x)[0][:, -1])


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
@pytest.mark.parametrize(
    "text",
    ["G6@0.7:0.05/every=2/end=0.5", "R6@0.7:0.05/every=2/end=1", "R6@0.7:0.05/every=2/grow=random",
     "A6@0.7:0.05/warmup=1/period=1/finetune=2"],
)  # fmt: skip
def test_recurrent_layers_keep_cudnn_compatible_weights(cell, text):
    torch.manual_seed(0)
    model = _Recurrent(cell)
    rnn = model.rnn
    storage = {name: getattr(rnn, name).data_ptr() for name in rnn._flat_weights_names}
    opt = dsd_optimizer(model, torch.optim.Adam(model.parameters(), lr=0.05), text, unit="step")
    x, y = torch.randn(4, 6, 3), torch.randint(0, 2, (4,))
    for _ in range(6):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        assert all(
            w is getattr(rnn, n) for w, n in zip(rnn._flat_weights, rnn._flat_weights_names, strict=True)
        )
        assert {n: getattr(rnn, n).data_ptr() for n in rnn._flat_weights_names} == storage  # in place
        if opt.dsd.masks is not None:
            for name, mask in opt.dsd.masks.masks.items():
                assert torch.all(opt.dsd.params[name][~mask] == 0), name
    rnn.flatten_parameters()
    assert all(w is getattr(rnn, n) for w, n in zip(rnn._flat_weights, rnn._flat_weights_names, strict=True))
    # every matrix, each direction its own, at the phase's sparsity exactly (all four end sparse)
    matrices = [n for n in opt.dsd.params if n.startswith("rnn.")]
    assert len(matrices) == 8 and sum(n.endswith("_reverse") for n in matrices) == 4
    for name, p in opt.dsd.params.items():
        mask = opt.dsd.masks.masks[name]
        assert int(mask.sum()) == kept_count(p.numel(), 0.7), name
        assert int(torch.count_nonzero(p)) <= int(mask.sum()) and torch.all(p[~mask] == 0), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (cuDNN)")
@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
def test_cudnn_runs_the_masked_weights_without_a_copy(cell):
    torch.manual_seed(0)
    model = _Recurrent(cell).cuda()
    model.rnn.flatten_parameters()
    opt = dsd_optimizer(
        model, torch.optim.Adam(model.parameters(), lr=0.05), "R4@0.7:0.05/every=1/end=1", unit="step"
    )
    x, y = torch.randn(4, 6, 3, device="cuda"), torch.randint(0, 2, (4,), device="cuda")
    for _ in range(4):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.rnn.flatten_parameters()
    with torch.no_grad():
        on_gpu = model(x)
        model_cpu = _Recurrent(cell)
        model_cpu.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
        assert torch.allclose(on_gpu.cpu(), model_cpu(x.cpu()), atol=1e-5)


def test_skipped_steps_count_in_the_phase_so_the_ramp_still_ends_at_its_sparsity(tmp_path):
    from tests.toy_task import ToyTask

    task = ToyTask()
    task.nan_batches = {0}  # one batch of 8 an epoch has a NaN loss: skipped, counted
    schedule = Schedule.parse("D1:0.01,G2@0.8:0.01/every=3/end=1")  # its last update: the phase's last batch
    trainer = toy_trainer(tmp_path / "exp", schedule, task=task)
    trainer.run()
    assert trainer.nonfinite_total == 3
    for name, p in trainer.dsd.params.items():
        assert int(torch.count_nonzero(p)) <= kept_count(p.numel(), 0.8), name
    end = load_safely(tmp_path / "exp" / "checkpoints" / "phase2-end.pt")
    assert end["dsd"]["updates"]["step"] == 16  # all the phase's batches, the skipped ones included
    assert all(int(m.sum()) == kept_count(m.numel(), 0.8) for m in end["dsd"]["masks"].values())


def test_handing_over_a_dev_selected_epoch_hands_over_its_own_masks(tmp_path):
    schedule = Schedule.parse("D1:0.01,G3@0.8:0.01/every=2/end=1,D1:0.001")
    trainer = toy_trainer(tmp_path / "exp", schedule, ["train.handover=best", "train.select_on=dev_error"])
    trainer.run(until_phase=2)
    row = trainer.results[1]
    best = load_safely(tmp_path / "exp" / "checkpoints" / "phase2-end.pt")
    # the phase hands on the epoch it selected: weights and masks of that epoch, consistent with each other
    for name, mask in best["dsd"]["masks"].items():
        assert int(torch.count_nonzero(best["model"][name][~mask])) == 0, name
        assert torch.equal(trainer.dsd.masks.masks[name], mask.to(trainer.dsd.masks.masks[name].device))
    assert row["handover"] == "best" and row["best"]["epoch"] == 2 < row["epochs"]  # mid-ramp: epoch 2 of 3
    assert all(s < 0.8 for s in row["layer_sparsity"].values())  # the ramp had not ended at that epoch
