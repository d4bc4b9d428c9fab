"""Two processes, one run folder: the second is refused while the first lives, with the holder's pid and
host in the message; the kernel frees the lock when the holder dies (SIGKILL included). Real processes:
the holder is a ``dsd-seq`` subprocess held inside a training step (the toy task's stall hook)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsd_seq.cli import main
from dsd_seq.training.run_lock import LOCK_NAME, RunLock, RunLockedError

ROOT = Path(__file__).resolve().parents[1]
TOY = (
    "task: tests.toy_task:build_toy_task\nschedule: D2:1e-2,S1@0.5:1e-2,D1:1e-3\n"
    "train: {progress: false, tensorboard: false, eval_splits: [test], num_threads: 1, seed: 1}\n"
)


def _command(kind: str, config: Path, exp: Path) -> list[str]:
    """``train`` on EXP/dsd, or ``plan-run dense`` (which trains into EXP/dsd too)."""
    if kind == "train":
        return ["train", "--config", str(config), "--exp-dir", str(exp / "dsd"), "--resume"]
    return ["plan-run", "dense", "--config", str(config), "--exp", str(exp)]


def _hold(kind: str, config: Path, exp: Path, tmp_path: Path) -> subprocess.Popen:
    """Start ``kind`` in a subprocess and wait until it is inside its third training step."""
    stalled = tmp_path / "stalled"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TOY_STALL_AFTER_CALLS": "2",
        "TOY_STALL_FILE": str(stalled),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "dsd_seq.cli", *_command(kind, config, exp)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    while not stalled.exists():
        if proc.poll() is not None:
            pytest.fail(f"the holder ended early:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize(
    ("holder", "second"), [("train", "train"), ("train", "plan-run"), ("plan-run", "train")]
)
def test_a_second_run_on_a_busy_folder_is_refused_naming_the_holder(
    tmp_path, monkeypatch, capsys, holder, second
):
    monkeypatch.chdir(ROOT)
    config, exp = tmp_path / "toy.yaml", tmp_path / "exp"
    config.write_text(TOY)
    proc = _hold(holder, config, exp, tmp_path)
    try:
        before = {p: p.read_bytes() for p in (exp / "dsd").rglob("*") if p.is_file()}
        assert main(_command(second, config, exp)) == 2
        err = capsys.readouterr().err
        assert "RunLockedError" in err and "is in use by another run" in err
        assert f"pid {proc.pid} on host {socket.gethostname()}" in err
        # the refused run touched nothing
        assert {p: p.read_bytes() for p in (exp / "dsd").rglob("*") if p.is_file()} == before
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with RunLock(exp / "dsd"):  # the kernel released the dead holder's lock
        assert (exp / "dsd" / LOCK_NAME).read_text().startswith(f"pid {os.getpid()} ")


def test_the_lock_is_exclusive_within_one_process_too_and_released_on_exit(tmp_path):
    with RunLock(tmp_path), pytest.raises(RunLockedError, match=f"pid {os.getpid()}"), RunLock(tmp_path):
        pass
    with RunLock(tmp_path):
        pass
    with RunLock(tmp_path, enabled=False), RunLock(tmp_path):  # torchrun ranks other than 0 do not lock
        pass


@pytest.mark.parametrize("name", [".dsd-seq.lock", "metrics.jsonl"])
def test_a_link_planted_in_the_run_folder_is_refused_and_its_target_untouched(tmp_path, name):
    from dsd_seq.core.schedule import Schedule
    from dsd_seq.safe_io import LinkRefusedError
    from tests.toy_task import toy_trainer

    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / name).symlink_to(target)
    with pytest.raises(LinkRefusedError, match=f"{name} is a symbolic link"), RunLock(exp):
        toy_trainer(exp, Schedule.parse("D1:0.01")).run()
    assert target.read_text() == "keep me\n"


def test_a_forked_worker_does_not_keep_a_dead_runs_lock(tmp_path):
    script = (
        "import os, sys, time\n"
        "from dsd_seq.training.run_lock import RunLock\n"
        f"RunLock({str(tmp_path)!r}).__enter__()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "os._exit(0)\n"  # the run dies; its worker lives on
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    child = int(done.stdout.strip())
    try:
        with RunLock(tmp_path):  # at once: the worker holds no lock
            pass
    finally:
        os.kill(child, signal.SIGKILL)
