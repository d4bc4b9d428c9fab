"""The optimizer's state at phase boundaries (issue 12): keep (as before), reset at every boundary, or
reset the re-densed tensors so Adam's bias correction restarts for revived weights. Checked on the
optimizer's own state tensors, in a real run of the toy task."""

import json

import pytest

from dsd_seq.core.schedule import Schedule
from dsd_seq.training.config import ConfigError, load_config
from tests.toy_task import toy_trainer

# 8 batches an epoch: steps 1-8 dense, 9-16 sparse, 17-24 re-dense
SCHEDULE = Schedule.parse("D1:0.01,S1@0.5:0.01,D1:0.001")


def _state_after(tmp_path, steps, *policy):
    trainer = toy_trainer(tmp_path / "exp", SCHEDULE, ["train.optimizer=adam", *policy])
    trainer.run(stop_after_steps=steps)
    steps_of = {name: int(trainer.optimizer.state[p]["step"]) for name, p in trainer.model.named_parameters()}
    return trainer, steps_of


def _largest_revived_move(trainer, tmp_path):
    from dsd_seq.safe_io import load_safely

    before = load_safely(tmp_path / "exp" / "checkpoints" / "phase2-end.pt")["model"]
    moves = [
        trainer.model.state_dict()[name][before[name] == 0].abs().max()
        for name in trainer.dsd.params
        if (before[name] == 0).any()
    ]
    return float(max(moves))


def test_keep_carries_every_tensor_s_step_count_across_boundaries(tmp_path):
    trainer, steps = _state_after(tmp_path, 17)  # one step into the re-dense phase
    assert set(steps.values()) == {17}
    # no bias correction restart: the revived weight's first step is not the lr the schedule asks for
    assert _largest_revived_move(trainer, tmp_path) < 0.9e-3
    results = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert results["optimizer_state"] == {"at_phase": "keep", "redense": "keep"}


def test_reset_at_every_boundary_starts_the_optimizer_afresh(tmp_path):
    _, steps = _state_after(tmp_path, 9, "train.optimizer_state_at_phase=reset")  # one step into sparse
    assert set(steps.values()) == {1}


def test_reset_tensors_restarts_only_the_redensed_tensors(tmp_path):
    trainer, steps = _state_after(tmp_path, 17, "train.redense_state=reset_tensors")
    prunable = set(trainer.dsd.params)
    assert prunable and {steps[n] for n in prunable} == {1}  # bias correction restarts for revived weights
    assert {steps[n] for n in steps if n not in prunable} == {17}  # biases, norms, embeddings keep theirs
    # a revived weight (0 at the sparse phase's end) takes one bias-corrected Adam step: exactly lr in size
    assert _largest_revived_move(trainer, tmp_path) == pytest.approx(1e-3, rel=1e-3)
    results = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert results["optimizer_state"] == {"at_phase": "keep", "redense": "reset_tensors"}


def test_unknown_policies_are_refused_naming_the_accepted_ones():
    with pytest.raises(ConfigError, match="accepted: keep, reset_tensors"):
        load_config(None, ["task=a:b", "schedule=D1:1e-3", "train.redense_state=zero"])
