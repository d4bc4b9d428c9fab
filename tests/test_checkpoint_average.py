"""Checkpoint averaging (``train.average``, ``dsd-seq average``): the mean of the chosen epochs'
checkpoints, exact zeros kept in a sparse phase, and the averaged model's scores in the results row."""

import json

import pytest
import torch

from dsd_seq.cli import main
from dsd_seq.core.schedule import Schedule
from dsd_seq.experiments.report import build_table, to_markdown
from dsd_seq.safe_io import load_safely
from dsd_seq.training.checkpoint_average import AverageError, average_states, chosen_epochs, parse_rule
from dsd_seq.training.config import ConfigError, load_config
from tests.toy_task import ScriptedDevLossTask, toy_trainer

# dense phase: best dev loss after epochs 2 and 4; sparse phase: 0.6, 0.4, 0.5
SCRIPT = [0.9, 0.5, 0.7, 0.55] + [0.6, 0.4, 0.5]


def _train(tmp_path, rule, name="run"):
    torch.manual_seed(0)
    task = ScriptedDevLossTask(SCRIPT)
    extra = ["train.eval_splits=[dev, test]", *([f"train.average={rule}"] if rule else [])]
    trainer = toy_trainer(tmp_path / name, Schedule.parse("D4:0.01,S3@0.5:0.01"), extra, task)
    return trainer, trainer.run()


def _mean(paths):
    states = [load_safely(p)["model"] for p in paths]
    return {k: torch.stack([s[k].double() for s in states]).mean(0).to(states[0][k].dtype) for k in states[0]}


def test_rules_choose_the_last_or_the_best_epochs():
    assert chosen_epochs("last", 3, [0.9, 0.5, 0.7, 0.55], False) == [2, 3, 4]
    assert chosen_epochs("best", 2, [0.9, 0.5, 0.7, 0.55], False) == [2, 4]
    assert chosen_epochs("best", 2, [10.0, 30.0, 20.0], True) == [2, 3]
    assert chosen_epochs("best", 1, [0.5, 0.5], False) == [2]  # a tie: the later epoch
    assert chosen_epochs("last", 5, [1.0, 2.0], False) == [1, 2]  # fewer epochs: all
    assert parse_rule("") is None and parse_rule("best:3") == ("best", 3)
    for bad in ("last", "last:0", "avg:3", "last:-1"):
        with pytest.raises(AverageError, match="train.average"):
            parse_rule(bad)
    with pytest.raises(ConfigError, match="train.average"):
        load_config(None, ["task=tests.toy_task:build_toy_task", "schedule=D1:1e-3", "train.average=first:2"])


def test_average_states_is_the_element_wise_mean_and_keeps_integer_buffers():
    a = {"w": torch.tensor([1.0, 0.0, 3.0]), "count": torch.tensor(4)}
    b = {"w": torch.tensor([2.0, 0.0, 5.0]), "count": torch.tensor(7)}
    out = average_states([a, b])
    assert torch.equal(out["w"], torch.tensor([1.5, 0.0, 4.0])) and int(out["count"]) == 7
    with pytest.raises(AverageError, match="other weights"):
        average_states([a, {"w": a["w"]}])


def test_the_results_row_scores_the_mean_of_the_last_epochs(tmp_path):
    trainer, rows = _train(tmp_path, "last:3")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert rows[0]["average"]["epochs"] == [2, 3, 4] and rows[0]["average"]["rule"] == "last:3"
    assert rows[0]["monitor_values"] == SCRIPT[:4]
    paths = [
        checkpoints / "phase1-epoch2.pt",
        checkpoints / "phase1-epoch3.pt",
        checkpoints / "phase1-end.pt",
    ]
    expected = _mean(paths)
    kept = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.model.load_state_dict(expected)
    trainer.model.eval()
    with torch.no_grad():
        test = trainer.task.evaluate("test", torch.device("cpu"))
    trainer.model.load_state_dict(kept)
    assert rows[0]["average"]["metrics"]["test"] == test
    # the results table shows the averaged model beside the dev-selected one
    table = build_table(json.loads((tmp_path / "run" / "results.json").read_text()))
    text = to_markdown(table)
    assert "Averaged epochs" in text and "last:3: 2, 3, 4" in text
    assert f"{rows[0]['average']['metrics']['test']['error']:.2f}" in text


def test_the_average_command_writes_the_mean_with_exact_zeros(tmp_path, capsys):
    _train(tmp_path, "best:2")
    run = tmp_path / "run"
    checkpoints = run / "checkpoints"
    assert main(["average", str(run), "--phase", "2", "--last", "3"]) == 0
    assert "averaged epochs 1, 2, 3 of phase 2" in capsys.readouterr().out
    averaged = load_safely(checkpoints / "phase2-avg-last3.pt")
    expected = _mean(
        [checkpoints / "phase2-epoch1.pt", checkpoints / "phase2-epoch2.pt", checkpoints / "phase2-end.pt"]
    )
    masks = averaged["dsd"]["masks"]
    for name, weight in averaged["model"].items():
        if name in masks:
            assert torch.all(weight[~masks[name]] == 0), name  # pruned: exactly zero
            assert torch.equal(weight[masks[name]], expected[name][masks[name]]), name
        else:
            assert torch.equal(weight, expected[name]), name
    assert averaged["averaged"] == {"phase": 2, "rule": "last:3", "epochs": [1, 2, 3]}
    # best by the scripted dev loss: epochs 2 (0.5) and 4 (0.55) of the dense phase
    assert main(["average", str(run), "--phase", "1", "--best", "2", "--out", str(tmp_path / "avg.pt")]) == 0
    assert load_safely(tmp_path / "avg.pt")["averaged"]["epochs"] == [2, 4]


def test_a_run_that_kept_no_epochs_says_how_to_keep_them(tmp_path, capsys):
    _train(tmp_path, "", name="plain")
    assert main(["average", str(tmp_path / "plain"), "--phase", "1", "--last", "2"]) == 2
    assert "train.average=last:N" in capsys.readouterr().err
    assert main(["average", str(tmp_path / "plain"), "--phase", "3", "--last", "2"]) == 2
    assert "choose 1..2" in capsys.readouterr().err


def test_a_damaged_epoch_checkpoint_costs_the_average_not_the_run(tmp_path, capsys):
    torch.manual_seed(0)
    task = ScriptedDevLossTask(SCRIPT)
    extra = ["train.eval_splits=[dev, test]", "train.average=last:3"]
    trainer = toy_trainer(tmp_path / "run", Schedule.parse("D4:0.01"), extra, task)
    trainer.run(stop_after_steps=24)
    (tmp_path / "run" / "checkpoints" / "phase1-epoch2.pt").write_bytes(b"damaged")
    torch.manual_seed(0)
    resumed = toy_trainer(tmp_path / "run", Schedule.parse("D4:0.01"), extra, ScriptedDevLossTask(SCRIPT))
    rows = resumed.run(resume=True)
    assert rows[0]["average"]["metrics"] is None and rows[0]["average"]["epochs"] == [2, 3, 4]
    assert "no averaged model" in capsys.readouterr().out


def test_the_average_command_masks_with_the_last_chosen_epochs_masks_in_a_rigl_phase(tmp_path):
    # a RigL phase redraws its masks every step: the average keeps the last chosen epoch's masks (those
    # the phase ended with when it is the last), not the oldest epoch's
    torch.manual_seed(0)
    task = ScriptedDevLossTask(SCRIPT)
    schedule = Schedule.parse("D4:0.01,R3@0.5:0.01/every=1/drop=0.5/end=1")
    trainer = toy_trainer(tmp_path / "rigl", schedule, ["train.average=last:3"], task)
    trainer.run()
    run, checkpoints = tmp_path / "rigl", tmp_path / "rigl" / "checkpoints"
    assert main(["average", str(run), "--phase", "2", "--last", "3"]) == 0
    averaged = load_safely(checkpoints / "phase2-avg-last3.pt")
    first = load_safely(checkpoints / "phase2-epoch1.pt")["dsd"]["masks"]
    last = load_safely(checkpoints / "phase2-end.pt")["dsd"]["masks"]
    assert any(not torch.equal(first[n], last[n]) for n in last)  # the masks did change in the phase
    grown_nonzero = False
    for name, mask in averaged["dsd"]["masks"].items():
        assert torch.equal(mask, last[name]), name
        assert torch.all(averaged["model"][name][~mask] == 0), name
        grown_nonzero |= bool(torch.any(averaged["model"][name][mask & ~first[name]] != 0))
    assert grown_nonzero  # weights grown during the phase keep their averaged values
