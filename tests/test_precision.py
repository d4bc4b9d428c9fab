"""Mixed precision on the CPU (DESIGN.md invariant 2 under AMP): bf16 and fp16 autocast train through the
trainer's own step with pruned weights exactly 0.0 after every step; fp16's gradient scaler skips
overflowing steps without counting them as failures or touching the masks, and its state is checkpointed
so that a resumed fp16 run is exact. CUDA runs of the same are in tests/test_gpu.py."""

import pytest
import torch

from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import load_safely
from dsd_seq.training.config import ConfigError, load_config
from dsd_seq.training.metrics_log import read_metrics
from dsd_seq.training.trainer import TrainingError
from tests.toy_task import ToyTask, toy_trainer

# 8 batches an epoch: steps 0-15 dense, 16-31 sparse, 32-47 re-dense
SCHEDULE = Schedule.parse("D2:0.01,S2@0.5:0.01,D2:0.001")


def _trainer(tmp_path, precision, name="exp", task=None, schedule=SCHEDULE, extra=()):
    options = ["train.optimizer=adamw", "train.weight_decay=0.01", f"train.precision={precision}"]
    return toy_trainer(tmp_path / name, schedule, [*options, "train.num_threads=1", *extra], task)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_pruned_weights_stay_exactly_zero_after_every_mixed_precision_step(tmp_path, precision):
    trainer = _trainer(tmp_path, precision)
    trainer.dsd.enter(SCHEDULE[1])  # 50% sparse at lr 0.01
    masks = {n: m.clone() for n, m in trainer.dsd.masks.masks.items()}
    batches = trainer.task.train_batches(torch.Generator().manual_seed(0))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    for batch in batches:
        result = trainer.train_step(batch)
        assert result.loss is not None and not result.overflow
        for name, p in trainer.dsd.params.items():
            assert torch.all(p.detach()[~masks[name]] == 0.0), name
    for name, p in trainer.dsd.params.items():
        assert torch.equal(trainer.dsd.masks.masks[name], masks[name]), name
        assert not torch.equal(p.detach(), before[name]), f"{name} was not trained"
        assert p.dtype == torch.float32, "the master weights stay fp32"


def test_fp16_scale_overflow_skips_the_step_without_counting_it_or_unmasking(tmp_path):
    trainer = _trainer(tmp_path, "fp16", schedule=Schedule.parse("S2@0.5:0.01"))
    trainer.precision.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)  # overflows at first
    trainer.run()
    events = read_metrics(tmp_path / "exp" / "metrics.jsonl")
    overflows = [e for e in events if e["event"] == "overflow"]
    assert overflows, "fp16 at scale 2^40 overflows"
    assert [e["scale"] for e in overflows[:3]] == [2.0**39, 2.0**38, 2.0**37]
    assert not [e for e in events if e["event"] == "nonfinite"] and trainer.nonfinite_total == 0
    assert len([e for e in events if e["event"] == "train"]) == 16 - len(overflows)
    state = load_safely(tmp_path / "exp" / "checkpoints" / "last.pt")
    for name, mask in state["dsd"]["masks"].items():
        assert int(mask.sum()) == mask.numel() - round(0.5 * mask.numel()), name
        assert torch.all(state["model"][name][~mask] == 0.0), name
    assert state["precision"]["scaler"]["scale"] == trainer.precision.scale < 2.0**40


def test_fp16_non_finite_gradients_still_stop_the_run_once_the_scale_is_below_one(tmp_path):
    task = ToyTask()
    task.nan_gradient_batches = set(range(64))  # every batch: finite loss, NaN gradient
    trainer = _trainer(
        tmp_path, "fp16", task=task, schedule=Schedule.parse("D4:0.01"), extra=["train.max_nonfinite_steps=3"]
    )
    with pytest.raises(TrainingError, match="3 consecutive steps"):
        trainer.run()
    # 2^16 halves to 2^0 in 16 skipped steps (routine overflows), then 3 counted failures at scales < 1
    events = read_metrics(tmp_path / "exp" / "metrics.jsonl")
    assert len([e for e in events if e["event"] == "overflow"]) == 16
    assert len([e for e in events if e["event"] == "nonfinite"]) == 3


def test_fp16_run_resumed_mid_phase_is_exact_with_the_scaler_state(tmp_path):
    short = Schedule.parse("D1:0.01,S1@0.5:0.01")
    reference = _trainer(tmp_path, "fp16", name="reference", schedule=short)
    reference.run()
    _trainer(tmp_path, "fp16", schedule=short).run(stop_after_steps=11)  # 3 steps into the sparse phase
    resumed = _trainer(tmp_path, "fp16", schedule=short)
    resumed.run(resume=True)
    assert resumed.precision.scale == reference.precision.scale
    for name, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_precision_is_validated_and_a_changed_precision_is_not_resumed(tmp_path):
    with pytest.raises(ConfigError, match="train.precision='fp8'"):
        load_config(None, ["task=a:b", "schedule=D1:1e-3", "train.precision=fp8"])
    _trainer(tmp_path, "fp32").run(stop_after_steps=2)
    with pytest.raises(Exception, match="train.precision: 'fp32' -> 'bf16'"):
        _trainer(tmp_path, "bf16").run(resume=True)
