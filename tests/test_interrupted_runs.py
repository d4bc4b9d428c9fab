"""A run stopped by Ctrl-C or SIGTERM never passes as finished: ``dsd-seq train`` exits 130 / 143 (so a
recipe under ``set -e`` stops), ``--resume`` then finishes it with 0, and ``export`` will not call an
unfinished run's newest phase its final model."""

import json
import signal
import subprocess
import time

import pytest

from dsd_seq.core.schedule import Schedule
from dsd_seq.export.exporter import choose_checkpoint
from dsd_seq.export.package import PackageError
from tests.toy_cli_runs import ROOT, toy_config, train_command, train_env
from tests.toy_task import toy_trainer

# 8 batches an epoch, 40 epochs: long enough to be stopped in the middle
CONFIG = toy_config("D20:0.01,S10@0.5:0.01,D10:0.001")


def _started(exp) -> bool:
    log = exp / "metrics.jsonl"
    return log.is_file() and '"event": "train"' in log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_with_the_shells_status_and_resume_finishes_it(tmp_path, signum, status):
    config, exp = tmp_path / "config.yaml", tmp_path / "exp"
    config.write_text(CONFIG)
    proc = subprocess.Popen(
        train_command(config, exp, resume=False), cwd=ROOT, env=train_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not _started(exp):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be stopped"
        time.sleep(0.05)
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == status, output[-3000:]
    assert "continue with --resume" in output
    resumed = subprocess.run(
        train_command(config, exp, resume=True), cwd=ROOT, env=train_env(), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(json.loads((exp / "results.json").read_text())["phases"]) == 3


def test_an_uninterrupted_partial_run_is_not_an_interruption(tmp_path):
    trainer = toy_trainer(tmp_path / "dense", Schedule.parse("D1:0.01,S1@0.5:0.01"))
    trainer.run(until_phase=1)
    assert trainer.interrupted is False  # a dense phase trained alone, as compare's baselines are


def test_export_refuses_an_unfinished_run_unless_a_phase_is_named(tmp_path):
    exp = tmp_path / "dense_only"
    toy_trainer(exp, Schedule.parse("D1:0.01,S1@0.5:0.01,D1:0.001")).run(until_phase=1)
    with pytest.raises(PackageError, match=r"unfinished: 1 of its 3 phases.*--phase 1"):
        choose_checkpoint(exp)
    path, phase = choose_checkpoint(exp, phase=1)
    assert phase == 1 and path.name == "phase1-end.pt"
