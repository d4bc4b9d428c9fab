"""The training loop: exact resume, NaN handling, phase results, checkpoints (DESIGN.md invariant 5)."""

import json
import pickle

import pytest
import torch

from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import CheckpointError, load_safely
from dsd_seq.training.metrics_log import read_metrics
from dsd_seq.training.trainer import TrainingError
from tests.toy_task import ToyTask, toy_trainer, train_in_pieces

SCHEDULE = Schedule.parse("D2:0.01,S2@0.5:0.01,D2:0.001")


def _trainer(tmp_path, name="exp", schedule=SCHEDULE, extra=(), task=None):
    return toy_trainer(tmp_path / name, schedule, extra, task)


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


# 8 batches an epoch, 2 epochs a phase: steps 0-15 dense, 16-31 sparse, 32-47 re-dense
@pytest.mark.parametrize("stops", [[3], [20], [3, 20, 37], [16, 40]])  # 16: right at the end of phase 1
def test_resume_mid_phase_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, stops):
    reference = _trainer(tmp_path, "uninterrupted")
    reference.run()
    pieces, resumed, results = train_in_pieces(lambda: _trainer(tmp_path, "interrupted"), stops)
    for stop, piece in zip(stops, pieces, strict=True):
        assert piece.position.phase == (stop - 1) // 16  # the phase of the last step taken
    assert not pieces[-1].finished
    assert resumed.finished
    for name, value in _weights(reference).items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert [r["metrics"] for r in results] == [r["metrics"] for r in reference.results]


def test_a_failing_step_saves_the_state_before_it_and_resume_is_exact(tmp_path):
    reference = _trainer(tmp_path, "uninterrupted")
    reference.run()
    failing = _trainer(tmp_path)
    failing.task.fail_at_call = 21  # inside the sparse phase
    with pytest.raises(RuntimeError, match="simulated failure"):
        failing.run()
    assert load_safely(tmp_path / "exp" / "checkpoints" / "last.pt")["position"]["global_step"] == 20
    resumed = _trainer(tmp_path)
    resumed.run(resume=True)
    for name, value in _weights(reference).items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_resume_with_a_changed_config_is_refused_naming_the_keys(tmp_path):
    _trainer(tmp_path).run(stop_after_steps=2)
    with pytest.raises(CheckpointError, match=r"train.seed: 0 -> 1"):
        _trainer(tmp_path, extra=["train.seed=1"]).run(resume=True)
    _trainer(tmp_path, extra=["train.progress=true"]).run(resume=True, stop_after_steps=1)  # harmless change


def test_dsdsd_iterations_are_labelled(tmp_path):
    schedule = Schedule.parse("D1:0.01,S1@0.5:0.01,D1:0.001,S1@0.25:0.001,D1:0.0001")
    rows = _trainer(tmp_path, schedule=schedule).run()
    assert [r["label"] for r in rows] == ["Dense", "Sparse", "Re-dense", "Sparse 2", "Re-dense 2"]
    assert [r["target_sparsity"] for r in rows] == [0, 0.5, 0, 0.25, 0]
    # measured = exact zeros: at least the target (weights that stayed zero through re-dense count too)
    assert (
        rows[1]["measured_sparsity"] == pytest.approx(0.5, abs=1e-3) and rows[3]["measured_sparsity"] >= 0.25
    )


def test_phase_results_and_logs_are_written(tmp_path):
    trainer = _trainer(tmp_path)
    rows = trainer.run()
    assert [r["label"] for r in rows] == ["Dense", "Sparse", "Re-dense"]
    assert rows[1]["measured_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert rows[2]["cumulative_epochs"] == 6
    saved = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert saved["phases"][1]["target_sparsity"] == 0.5
    events = {r["event"] for r in read_metrics(tmp_path / "exp" / "metrics.jsonl")}
    assert {"data", "phase_start", "train", "epoch", "phase_end"} <= events
    for i in (1, 2, 3):
        state = load_safely(tmp_path / "exp" / "checkpoints" / f"phase{i}-end.pt")
        assert state["position"]["phase"] == i


def test_llr_baseline_continues_from_the_dsd_dense_phase(tmp_path):
    dsd = _trainer(tmp_path, "dsd")
    dsd.run()
    llr = _trainer(tmp_path, "llr", schedule=SCHEDULE.llr())
    rows = llr.run(init_from=tmp_path / "dsd" / "checkpoints" / "phase1-end.pt")
    assert rows[0] == dsd.results[0]
    assert [r["measured_sparsity"] for r in rows[1:]] == [pytest.approx(0.0, abs=0.05)] * 2
    other = _trainer(tmp_path, "other", schedule=Schedule.parse("D1:0.01,D1:0.001"))
    with pytest.raises(CheckpointError, match="not a prefix"):
        other.run(init_from=tmp_path / "dsd" / "checkpoints" / "phase1-end.pt")


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    _trainer(tmp_path).run(stop_after_steps=2)
    with pytest.raises(TrainingError, match="--resume"):
        _trainer(tmp_path).run()


def test_nan_loss_skips_the_step_without_touching_weights_or_batch_norm_statistics(tmp_path):
    task = ToyTask(batch_norm=True)
    task.nan_batches = {0}  # one batch per epoch holds utterance 0
    trainer = _trainer(tmp_path, task=task, schedule=Schedule.parse("D2:0.01"))
    trainer.run()
    assert trainer.nonfinite_total == 2
    state = trainer.model.state_dict()
    assert state["bn.num_batches_tracked"] == 14  # 16 steps, 2 skipped
    assert all(torch.isfinite(v).all() for v in state.values())
    events = [r for r in read_metrics(tmp_path / "exp" / "metrics.jsonl") if r["event"] == "nonfinite"]
    assert len(events) == trainer.nonfinite_total


def test_nan_gradient_with_a_finite_loss_is_skipped_too(tmp_path):
    trainer = _trainer(tmp_path, schedule=Schedule.parse("D1:0.01"))
    trainer.task.nan_gradient_batches = {0}
    trainer.run()
    assert trainer.nonfinite_total == 1
    assert all(torch.isfinite(v).all() for v in trainer.model.state_dict().values())


def test_repeated_nan_losses_stop_the_run_with_a_checkpoint(tmp_path):
    task = ToyTask()
    task.nan_batches = set(range(64))
    trainer = _trainer(tmp_path, task=task, extra=["train.max_nonfinite_steps=3"])
    before = _weights(trainer)
    with pytest.raises(TrainingError, match="3 consecutive steps"):
        trainer.run()
    state = load_safely(tmp_path / "exp" / "checkpoints" / "last.pt")
    for name, value in before.items():
        assert torch.equal(state["model"][name], value)


def test_a_pickle_payload_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": Payload()}, protocol=2))
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_safely(path)
    assert not marker.exists()


def test_truncated_checkpoint_has_a_clear_message(tmp_path):
    _trainer(tmp_path).run(stop_after_steps=1)
    last = tmp_path / "exp" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_safely(last)
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        _trainer(tmp_path).run(resume=True)


@pytest.mark.parametrize("damage", ["truncate", "flip a byte"])
def test_resume_skips_a_damaged_newest_checkpoint_and_uses_the_one_before(tmp_path, damage):
    reference = _trainer(tmp_path, "uninterrupted")
    reference.run()
    extra = ["train.checkpoint_every_steps=3", "train.keep_checkpoints=2"]
    _trainer(tmp_path, extra=extra).run(stop_after_steps=20)
    folder = tmp_path / "exp" / "checkpoints"
    assert sorted(p.name for p in folder.glob("step-*.pt")) == ["step-000000018.pt", "step-000000020.pt"]
    assert (folder / "phase1-end.pt").is_file()
    newest = folder / "step-000000020.pt"
    data = bytearray(newest.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2 :]
    else:
        data[-10] ^= 0xFF
    newest.write_bytes(bytes(data))  # last.pt is the same file: damaged too
    resumed = _trainer(tmp_path, extra=extra)
    resumed.run(resume=True)
    assert resumed.resumed_from == folder / "step-000000018.pt"
    assert [p.name for p, _ in resumed.skipped_checkpoints] == ["step-000000020.pt"]
    assert "truncated" in resumed.skipped_checkpoints[0][1] or "sha256" in resumed.skipped_checkpoints[0][1]
    assert (folder / "step-000000020.pt.corrupt").is_file()
    for name, value in _weights(reference).items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_checkpoints_carry_a_format_version_and_a_checksum(tmp_path):
    _trainer(tmp_path).run(stop_after_steps=1)
    header = (tmp_path / "exp" / "checkpoints" / "last.pt").read_bytes().split(b"\n", 1)[0]
    assert header.startswith(b"dsd-seq-checkpoint ")
    fields = json.loads(header.split(b" ", 1)[1])
    assert fields["format"] == 2 and len(fields["sha256"]) == 64


def test_nans_starting_mid_run_stop_it_with_advice_and_the_good_checkpoints_kept(tmp_path):
    _trainer(tmp_path).run(stop_after_steps=20)  # into the sparse phase, all finite
    folder = tmp_path / "exp" / "checkpoints"
    good = load_safely(folder / "last.pt")
    task = ToyTask()
    task.nan_batches = set(range(64))  # from here on every loss is NaN
    with pytest.raises(
        TrainingError, match=r"3 consecutive steps.*train.grad_clip or lower the learning rate"
    ):
        _trainer(tmp_path, task=task, extra=["train.max_nonfinite_steps=3"]).run(resume=True)
    after = load_safely(folder / "last.pt")
    # two NaN steps were taken (skipped); the third, which stopped the run, is retried on resume
    assert after["position"]["global_step"] == 22 and after["nonfinite_total"] == 3
    for name, value in good["model"].items():
        assert torch.equal(after["model"][name], value), name
    assert torch.equal(
        after["dsd"]["masks"][next(iter(good["dsd"]["masks"]))], next(iter(good["dsd"]["masks"].values()))
    )
    assert load_safely(folder / "step-000000020.pt")["position"] == good["position"]
    assert load_safely(folder / "phase1-end.pt")["position"]["phase"] == 1
