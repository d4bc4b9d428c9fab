"""The dsd-seq command: errors for people (exit 2, one message), schedules, and a train/report round trip."""

import re

import pytest

from dsd_seq.cli import main


def _config(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return str(path)


def test_bad_config_is_one_message_naming_file_and_key(tmp_path, capsys):
    path = _config(
        tmp_path, "task: tests.toy_task:build_toy_task\nschedule: D1:1e-3\ntrain: {optimiser: adam}\n"
    )
    assert main(["train", "--config", path, "--exp-dir", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err
    assert "run.yaml: train: unknown key(s) ['optimiser']" in err and "Traceback" not in err


def test_bad_schedule_on_the_command_line(tmp_path, capsys):
    path = _config(tmp_path, "task: tests.toy_task:build_toy_task\nschedule: D1:1e-3\n")
    assert main(["train", "--config", path, "--exp-dir", str(tmp_path / "e"), "--schedule", "S1:1e-3"]) == 2
    assert "needs @<sparsity>" in capsys.readouterr().err


def test_schedule_explains_the_llr_baseline(capsys):
    assert main(["schedule", "D2:1e-3,S1@0.5:1e-3,D1:1e-4"]) == 0
    out = capsys.readouterr().out
    assert "LLR baseline: D2:0.001,D1:0.001,D1:0.0001 (4 epochs)" in out and "Re-dense" in out


def test_train_in_stages_then_report(tmp_path, capsys):
    path = _config(
        tmp_path,
        "task: tests.toy_task:build_toy_task\nschedule: D1:1e-2,S1@0.5:1e-2,D1:1e-3\n"
        "train: {progress: false, tensorboard: false, eval_splits: [test]}\n",
    )
    exp = str(tmp_path / "dsd")
    assert main(["train", "--config", path, "--exp-dir", exp, "--resume", "--until-phase", "1"]) == 0
    assert "1 of 3 phases done" in capsys.readouterr().out
    assert main(["train", "--config", path, "--exp-dir", exp, "--resume"]) == 0
    llr = [
        "--exp-dir",
        str(tmp_path / "llr"),
        "--baseline",
        "llr",
        "--init-from",
        f"{exp}/checkpoints/phase1-end.pt",
    ]
    assert main(["train", "--config", path, *llr]) == 0
    capsys.readouterr()
    assert (
        main(["report", "--exp", exp, "--baseline", str(tmp_path / "llr"), "--out", str(tmp_path / "r.v1")])
        == 0
    )
    table = (tmp_path / "r.v1.md").read_text()
    assert table.count("| DSD |") == 3 and table.count("| LLR |") == 2 and "test error" in table
    assert main(["train", "--config", path, *llr]) == 2  # an existing run is never restarted silently
    assert "pass --resume" in capsys.readouterr().err
    main(["train", "--config", path, *llr, "--resume"])  # finished: prints its table, baseline rows named LLR
    assert "| LLR | Dense (LLR) | 1 (2)" in capsys.readouterr().out


TOY = "task: tests.toy_task:build_toy_task\ntrain: {progress: false, tensorboard: false}\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--schedule", "D1:1e-3,S1@1.5:1e-3"], r"sparsity in \(0, 1\)"),
        (["--schedule", "D1:1e-3,S1@0:1e-3"], r"sparsity in \(0, 1\)"),
        (
            ["--set", "masking.overrides={'fc.*': 1.0}"],
            r"masking.overrides\['fc.\*'\]=1.0; sparsity must be in \[0, 1\)",
        ),
        (["--schedule", "D1:1e-3,D1:1e-4"], "has no sparse phase.*--dense-only"),
        (["--set", "selection.include=['nothing.*']"], "selection.include: pattern 'nothing.*' matches no"),
        (
            ["--set", "masking.overrides={'nothing.*': 0.3}"],
            "masking.overrides: pattern 'nothing.*' matches no",
        ),
        (["--set", "train.keep_checkpoints=0"], "train.keep_checkpoints=0 must be >= 1"),
    ],
)
def test_invalid_settings_are_refused_before_any_training(tmp_path, capsys, extra, message):
    path = _config(tmp_path, TOY + "schedule: D1:1e-3,S1@0.5:1e-3\n")
    assert main(["train", "--config", path, "--exp-dir", str(tmp_path / "exp"), *extra]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "exp" / "checkpoints").exists()


def test_a_dense_only_schedule_runs_when_asked_for(tmp_path, capsys):
    path = _config(tmp_path, TOY + "schedule: D1:1e-3\n")
    assert main(["train", "--config", path, "--exp-dir", str(tmp_path / "exp"), "--dense-only"]) == 0


def test_a_bad_store_is_refused_before_the_first_step(tmp_path, monkeypatch, capsys):
    from tests.toy_cli_runs import toy_config_file

    config = toy_config_file(tmp_path, monkeypatch)
    (tmp_path / "a_file").write_text("")
    for store, message in (
        (tmp_path, "is a folder"),
        (tmp_path / "a_file" / "runs.jsonl", "cannot be written"),
    ):
        exp = tmp_path / f"exp{len(message)}"
        assert main(["train", "--config", config, "--exp-dir", str(exp), "--store", str(store)]) == 2
        assert message in capsys.readouterr().err
        assert not (exp / "checkpoints").exists()  # nothing trained
