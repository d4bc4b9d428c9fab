"""Every command that reads a checkpoint, given a 0-byte file, a foreign torch file (a list, a bare
state_dict) or a misnamed copy: a message naming the file, never a traceback; resume skips (and keeps)
what it cannot use and continues from the newest usable checkpoint."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dsd_seq.cli import main
from dsd_seq.core.schedule import Schedule
from dsd_seq.experiments.experiment_report import write_figures
from tests.toy_task import ToyRecurrentNet, toy_trainer

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = "D1:0.01,S1@0.5:0.01,D1:0.001"
BAD = {
    "zero-byte": (lambda path: path.write_bytes(b""), "is empty \\(0 bytes\\)"),
    "a list": (lambda path: torch.save([1, 2, 3], path), "holds a list, not a dsd-seq checkpoint"),
    "a bare state_dict": (
        lambda path: torch.save(ToyRecurrentNet().state_dict(), path),
        "lacks 'model'.*a bare state_dict is not a checkpoint",
    ),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished toy run (3 phases) and its config file."""
    tmp = tmp_path_factory.mktemp("run")
    toy_trainer(tmp / "exp", Schedule.parse(SCHEDULE), ["train.eval_splits=[test]"]).run()
    config = tmp / "toy.yaml"
    config.write_text(
        f"task: tests.toy_task:build_toy_task\nschedule: {SCHEDULE}\n"
        "train: {optimizer: nesterov, grad_clip: 1.0, progress: false, tensorboard: false, eval_splits: [test]}\n"
    )
    return tmp / "exp", config


@pytest.mark.parametrize("kind", list(BAD))
def test_resume_skips_and_keeps_an_unusable_newest_checkpoint(tmp_path, kind):
    exp = tmp_path / "exp"
    trainer = toy_trainer(exp, Schedule.parse(SCHEDULE), ["train.eval_splits=[test]"])
    trainer.run(stop_after_steps=12)
    folder = exp / "checkpoints"
    bad = folder / "step-000000099.pt"
    BAD[kind][0](bad)
    copy = folder / "step-000000012 copy 2.pt"  # somebody's backup: not a checkpoint, never touched
    copy.write_bytes((folder / "step-000000012.pt").read_bytes())
    resumed = toy_trainer(exp, Schedule.parse(SCHEDULE), ["train.eval_splits=[test]"])
    resumed.run(resume=True)
    assert resumed.resumed_from == folder / "step-000000012.pt" and resumed.finished
    assert [p.name for p, _ in resumed.skipped_checkpoints] == ["step-000000099.pt"]
    assert (folder / "step-000000099.pt.corrupt").is_file() and copy.is_file()


@pytest.mark.parametrize("kind", list(BAD))
def test_init_from_export_and_decode_name_the_file(tmp_path, run_dir, capsys, kind):
    exp, config = run_dir
    bad = tmp_path / "phase1-end.pt"
    make, message = BAD[kind]
    make(bad)
    args = ["train", "--config", str(config), "--exp-dir", str(tmp_path / "llr"), "--baseline", "llr"]
    assert main([*args, "--init-from", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and re.search(message, err), err

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    make(run / "checkpoints" / "phase1-end.pt")
    assert main(["export", str(run), "--phase", "1", "--out", str(tmp_path / "pkg")]) == 2
    err = capsys.readouterr().err
    assert "phase1-end.pt" in err and re.search(message, err), err

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    decode = subprocess.run(
        [sys.executable, "egs/common/local/decode_speech.py", "--config", str(config), "--checkpoint", str(bad),
         "--split", "test", "--out-dir", str(tmp_path / "decode")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert decode.returncode == 1 and "Traceback" not in decode.stderr, decode.stderr
    assert str(bad) in decode.stderr and re.search(message, decode.stderr)


@pytest.mark.parametrize("kind", list(BAD))
def test_report_figures_skip_an_unusable_phase_end_by_name(tmp_path, run_dir, kind):
    exp, _ = run_dir
    copy = tmp_path / "exp"
    (copy / "checkpoints").mkdir(parents=True)
    for f in exp.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    for n in (1, 2, 3):
        src = exp / "checkpoints" / f"phase{n}-end.pt"
        (copy / "checkpoints" / src.name).write_bytes(src.read_bytes())
    BAD[kind][0](copy / "checkpoints" / "phase2-end.pt")
    lines = write_figures({"DSD": copy}, tmp_path / "figures")
    skipped = [line for line in lines if "not drawn" in line]
    assert len(skipped) == 1 and "Figure 2" in skipped[0] and "phase2-end.pt" in skipped[0], lines
    assert re.search(BAD[kind][1], skipped[0])
    assert sum(line.startswith("![") for line in lines) == 2  # the other figures are drawn
