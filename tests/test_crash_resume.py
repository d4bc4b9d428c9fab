"""SIGKILL at the worst moments, then --resume: the run ends bit-identical to one never interrupted
(DESIGN.md invariant 5), and no checkpoint on disk is ever unreadable.

Each run is a real ``python -m dsd_seq.cli train`` process on the toy task. Kill points are deterministic:
the toy task hangs at a chosen loss call (TOY_STALL_AFTER_CALLS) and the test SIGKILLs it there, or the
checkpoint writer kills itself between writing a file and renaming it into place
(DSD_SEQ_TEST_KILL_IN_CHECKPOINT_WRITE).
"""

import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from dsd_seq.safe_io import KILL_IN_WRITE_ENV, load_safely
from tests.toy_cli_runs import ROOT, toy_config, train_command, train_env

# 8 batches an epoch, 2 epochs a phase: global steps 1-16 dense, 17-32 sparse, 33-48 re-dense.
# Checkpoints every 3 steps, at epoch ends (8, 24, 40) and at phase ends (16, 32, 48).
CONFIG = toy_config("D2:0.01,S2@0.5:0.01,D2:0.001", checkpoint_every_steps=3, keep_checkpoints=2)


def _train(config: Path, exp: Path, env_extra: dict, resume: bool) -> subprocess.Popen:
    return subprocess.Popen(
        train_command(config, exp, resume),
        cwd=ROOT,
        env=train_env(**env_extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill_at_loss_call(config: Path, exp: Path, calls: int, resume: bool, tmp: Path) -> None:
    """Let the run take ``calls`` steps, then SIGKILL it inside the next one."""
    stalled = tmp / f"stalled-{time.monotonic_ns()}"
    proc = _train(config, exp, {"TOY_STALL_AFTER_CALLS": str(calls), "TOY_STALL_FILE": str(stalled)}, resume)
    while not stalled.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before its kill point:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _kill_in_checkpoint_write(config: Path, exp: Path, nth_write: int) -> None:
    proc = _train(config, exp, {KILL_IN_WRITE_ENV: str(nth_write)}, resume=True)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, output[-3000:]


def _newest_position(exp: Path) -> dict:
    """Every checkpoint on disk must load (checksum verified); returns the newest one's position."""
    files = sorted((exp / "checkpoints").glob("*.pt"))
    assert files
    positions = [load_safely(f)["position"] for f in files]
    return max(positions, key=lambda p: p["global_step"])


def _state(path: Path) -> dict:
    state = load_safely(path)
    return {"model": state["model"], "dsd": state["dsd"]}


def _assert_identical(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_ends_bit_identical(tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text(CONFIG)
    reference = _train(config, tmp_path / "reference", {}, resume=False)
    output, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0, output[-3000:]

    exp = tmp_path / "killed"
    # 1. mid-epoch in the dense phase: 5 steps done, the checkpoint of step 3 survives
    _kill_at_loss_call(config, exp, 5, resume=False, tmp=tmp_path)
    assert _newest_position(exp)["global_step"] == 3
    # 2. inside a checkpoint write (writes at steps 6, 8, then 9): the file is complete, not yet renamed
    _kill_in_checkpoint_write(config, exp, nth_write=3)
    assert _newest_position(exp)["global_step"] == 8
    assert list((exp / "checkpoints").glob(".step-000000009.pt.*.tmp"))
    # 3. right at the phase transition: phase 1 ended (step 16) and the masks were just computed
    _kill_at_loss_call(config, exp, 8, resume=True, tmp=tmp_path)
    position = _newest_position(exp)
    assert (position["global_step"], position["phase"], position["entered"]) == (16, 1, False)
    # 4. mid-epoch in the sparse phase: steps 17-22 done, the checkpoint of step 21 survives
    _kill_at_loss_call(config, exp, 6, resume=True, tmp=tmp_path)
    position = _newest_position(exp)
    assert (position["global_step"], position["phase"], position["entered"]) == (21, 1, True)
    # 5. while writing the sparse phase's end checkpoint (writes at 24, 27, 30, then 32)
    _kill_in_checkpoint_write(config, exp, nth_write=4)
    assert _newest_position(exp)["global_step"] == 30
    assert not (exp / "checkpoints" / "phase2-end.pt").exists()
    # 6. to the end
    final = _train(config, exp, {}, resume=True)
    output, _ = final.communicate(timeout=300)
    assert final.returncode == 0, output[-3000:]
    assert not list((exp / "checkpoints").glob(".*.tmp"))

    for name in ("phase1-end.pt", "phase2-end.pt", "phase3-end.pt", "last.pt"):
        expected = _state(tmp_path / "reference" / "checkpoints" / name)
        _assert_identical(expected, _state(exp / "checkpoints" / name), name)
    masks = load_safely(exp / "checkpoints" / "phase2-end.pt")["dsd"]
    assert masks["masks"], "the sparse phase's checkpoint holds its masks"
