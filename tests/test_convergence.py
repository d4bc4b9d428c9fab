"""Phases that end at convergence (issue 12): the plateau rule, the schedule forms, and the trainer
stopping at the right epoch on a scripted dev loss, resumable mid-phase bit-identically."""

import json

import pytest
import torch

from dsd_seq.core.convergence import Plateau, Until
from dsd_seq.core.schedule import Schedule, ScheduleError
from dsd_seq.safe_io import load_safely
from dsd_seq.training.metrics_log import read_metrics
from dsd_seq.training.trainer import TrainingError
from tests.toy_task import ScriptedDevLossTask, toy_trainer, train_in_pieces


def _plateau_epochs(values, until, higher=False):
    """How many epochs a phase of at most len(values) epochs runs under ``until``."""
    plateau = Plateau()
    for epoch, value in enumerate(values, start=1):
        plateau.update(value, until.min_delta, higher)
        if plateau.converged(epoch, until):
            return epoch
    return len(values)


def test_the_plateau_rule_counts_patience_from_the_best_epoch():
    losses = [5.0, 4.0, 3.0, 3.5, 3.2, 2.0]
    assert _plateau_epochs(losses, Until(patience=2)) == 5
    assert _plateau_epochs(losses, Until(patience=3)) == 6  # the maximum: never converged
    assert _plateau_epochs(losses, Until(patience=1)) == 4
    assert _plateau_epochs(losses, Until(patience=1, min_epochs=5)) == 5


def test_min_delta_is_relative_and_the_direction_follows_the_metric():
    # 3.0 -> 2.98 is a 0.7% improvement: not enough for min_delta 1%
    assert _plateau_epochs([3.0, 2.98, 2.97, 1.0], Until(patience=2, min_delta=0.01)) == 3
    assert _plateau_epochs([3.0, 2.98, 2.97, 1.0], Until(patience=2)) == 4
    bleu = [10.0, 12.0, 11.0, 11.5]  # higher is better
    assert _plateau_epochs(bleu, Until(patience=2), higher=True) == 4
    assert _plateau_epochs(bleu, Until(patience=2), higher=False) == 3
    assert Until(monitor="dev_bleu4").higher_is_better("bleu4", True)
    assert not Until(monitor="dev_loss").higher_is_better("bleu4", True)


def test_a_nan_dev_loss_is_never_an_improvement():
    plateau = Plateau()
    assert plateau.update(2.0, 0.0, False)
    assert not plateau.update(float("nan"), 0.0, False)
    assert plateau.best == 2.0 and plateau.since_best == 1


def test_compact_and_yaml_forms_describe_the_same_phases():
    compact = Schedule.parse("D..40:1e-3,S2..20@0.5:1e-4/patience=2/min_delta=0.01/monitor=dev_wer,D10:1e-5")
    yaml_form = Schedule.from_config(
        [
            {"kind": "dense", "epochs": 40, "lr": 1e-3, "until": {}},
            {
                "kind": "sparse",
                "epochs": 20,
                "lr": 1e-4,
                "sparsity": 0.5,
                "until": {"monitor": "dev_wer", "patience": 2, "min_delta": 0.01, "min_epochs": 2},
            },
            {"kind": "dense", "epochs": 10, "lr": 1e-5},
        ]
    )
    assert compact == yaml_form
    assert Schedule.parse(compact.compact()) == compact
    assert compact[0].until == Until() and compact[2].until is None
    assert "until" not in compact.to_list()[2]  # a fixed phase is stored as before (old checkpoints)
    assert compact.realized([12, 5]).compact() == "D12:0.001,S5@0.5:0.0001,D10:1e-05"


@pytest.mark.parametrize(
    "text, message",
    [
        ("D40:1e-3/patience=3", "write ..<max epochs>"),
        ("D..40:1e-3/patience=0", "until.patience must be an integer >= 1"),
        ("D..40:1e-3/monitor=test_loss", "on test data"),
        ("D50..40:1e-3", r"min_epochs must be an integer in \[1, 40\]"),
        ("D..40:1e-3/speed=2", "'speed=2' in 'D..40:1e-3/speed=2' is not a convergence setting"),
        ("D..40:1e-3/monitor=loss", "must be <split>_<metric>"),
    ],
)
def test_bad_convergence_rules_are_refused_with_the_phase_named(text, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(text)


# 8 batches an epoch. The dense phase's dev loss bottoms out after its 3rd epoch: with patience 2 it ends
# after 5 of at most 8 epochs (steps 1-40); the sparse phase keeps improving and runs to its maximum of
# 3 (steps 41-64), the last phase takes 1 (65-72). Indexed by the run's epoch (realized, across phases).
SCRIPT = [5.0, 4.0, 3.0, 3.5, 3.2] + [1.0, 0.5, 0.4] + [0.4]
SCHEDULE = Schedule.parse("D..8:0.01/patience=2,S..3@0.5:0.01/patience=2,D1:0.001")


def _trainer(tmp_path, name="exp", schedule=SCHEDULE, script=SCRIPT, extra=()):
    task = ScriptedDevLossTask(script)
    return toy_trainer(tmp_path / name, schedule, ["train.eval_splits=[dev, test]", *extra], task)


def test_a_phase_ends_at_the_epoch_its_dev_loss_stopped_improving(tmp_path):
    trainer = _trainer(tmp_path)
    rows = trainer.run()
    assert [r["epochs"] for r in rows] == [5, 3, 1]
    assert [r["cumulative_epochs"] for r in rows] == [5, 8, 9]
    assert rows[0]["converged"] is True and rows[0]["max_epochs"] == 8 and rows[0]["monitor_best"] == 3.0
    assert rows[1]["converged"] is False  # ran to its maximum
    assert "converged" not in rows[2]  # a fixed phase's row is as before
    assert trainer.position.global_step == 9 * 8
    exp = tmp_path / "exp"
    results = json.loads((exp / "results.json").read_text())
    assert results["schedule"] == SCHEDULE.compact()
    assert results["realized_schedule"] == "D5:0.01,S3@0.5:0.01,D1:0.001"
    phase_ends = [r for r in read_metrics(exp / "metrics.jsonl") if r["event"] == "phase_end"]
    assert [r["epochs"] for r in phase_ends] == [5, 3, 1]
    epochs = [r for r in read_metrics(exp / "metrics.jsonl") if r["event"] == "epoch" and "monitor" in r]
    assert [(r["epoch"], r["since_best"], r["converged"]) for r in epochs[:5]] == [
        (1, 0, False), (2, 0, False), (3, 0, False), (4, 1, False), (5, 2, True),
    ]  # fmt: skip
    assert load_safely(exp / "checkpoints" / "phase1-end.pt")["results"][0]["epochs"] == 5


# 8 batches an epoch: stops inside epoch 4 of the dense phase, at its converged end (step 40, before the
# epoch's evaluation decides it), and at several points across both converging phases.
@pytest.mark.parametrize("stops", [[28], [40], [12, 32, 50]])
def test_resume_in_a_converging_phase_is_bit_identical(tmp_path, stops):
    reference = _trainer(tmp_path, "uninterrupted")
    reference.run()
    _, resumed, results = train_in_pieces(lambda: _trainer(tmp_path, "interrupted"), stops)
    assert resumed.finished
    for name, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    strip = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in results] == [
        {k: v for k, v in r.items() if k not in strip} for r in reference.results
    ]


def test_the_plateau_state_is_in_the_checkpoint(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.run(stop_after_steps=33)  # in epoch 5 of the dense phase: best 3.0, one epoch since
    position = load_safely(tmp_path / "exp" / "checkpoints" / "last.pt")["position"]
    assert (
        position["epoch"],
        position["step"],
        position["plateau_best"],
        position["plateau_since_best"],
    ) == (4, 1, 3.0, 1)


def test_a_monitor_the_task_does_not_report_is_an_error_naming_what_it_reports(tmp_path):
    trainer = _trainer(tmp_path, schedule=Schedule.parse("D..4:0.01/monitor=dev_cer,S1@0.5:0.01"))
    with pytest.raises(TrainingError, match=r"returns only \['error', 'loss'\]"):
        trainer.run()


def test_a_monitored_split_the_task_lacks_is_refused_before_training(tmp_path):
    with pytest.raises(TrainingError, match="no split 'heldout'"):
        _trainer(tmp_path, schedule=Schedule.parse("D..4:0.01/monitor=heldout_loss,S1@0.5:0.01"))


def test_the_schedule_command_explains_a_converging_phase(capsys):
    from dsd_seq.cli import main

    assert main(["schedule", "D2..40:1e-3/patience=5,S..10@0.5:1e-4,D5:1e-5"]) == 0
    out = capsys.readouterr().out
    assert "DSD: D2..40:0.001/patience=5,S..10@0.5:0.0001,D5:1e-05 (55 epochs at most)" in out
    assert "ends until dev_loss has not improved for 5 epoch(s); 2..40 epochs; hands on its last model" in out
    assert "realized" in out and "llr-converge" in out
