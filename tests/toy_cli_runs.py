"""The toy task trained by real ``python -m dsd_seq.cli`` processes: for the tests that kill one
(tests/test_crash_resume.py, tests/test_crash_windows.py) its config, its command and an environment with
no kill point left over from the caller; for compare and plan-run (tests/test_compare.py,
tests/test_plan_run.py) a config file that the runs they start can import the toy task from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dsd_seq.safe_io import KILL_AT_ENV, KILL_IN_WRITE_ENV

ROOT = Path(__file__).resolve().parents[1]
#: every variable that makes a run stop itself or hang: set only by the test that means it
KILL_VARIABLES = (KILL_AT_ENV, KILL_IN_WRITE_ENV, "TOY_STALL_AFTER_CALLS")


def toy_config(schedule: str, **train: object) -> str:
    """The YAML run config of the toy task: ``schedule``, nesterov with gradient clipping, one thread, no
    progress bars or TensorBoard, scored on ``test``; ``train`` adds train keys (e.g. keep_checkpoints)."""
    settings = {"optimizer": "nesterov", "grad_clip": 1.0, **train, "num_threads": 1, "progress": "false",
                "tensorboard": "false", "eval_splits": "[test]"}  # fmt: skip
    lines = [f"  {key}: {value}" for key, value in settings.items()]
    return (
        "\n".join(["task: tests.toy_task:build_toy_task", f"schedule: {schedule}", "train:", *lines]) + "\n"
    )


def train_command(config: Path, exp: Path, resume: bool) -> list[str]:
    command = [sys.executable, "-m", "dsd_seq.cli", "train", "--config", str(config), "--exp-dir", str(exp)]
    return command + (["--resume"] if resume else [])


def train_until_killed(config: Path, exp: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    """``dsd-seq train --resume`` of ``config`` in ``exp`` as its own process, SIGKILLed at the kill point
    ``kill_at`` (``NAME:N``, :data:`KILL_AT_ENV`) when one is given."""
    return subprocess.run(
        train_command(config, exp, resume=True),
        cwd=ROOT,
        env=train_env(**({KILL_AT_ENV: kill_at} if kill_at else {})),
        capture_output=True,
        text=True,
        timeout=600,
    )


def train_env(**variables: str) -> dict[str, str]:
    """This process's environment, importing this checkout, with only the kill ``variables`` given."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in KILL_VARIABLES:
        env.pop(key, None)
    return {**env, **variables}


def toy_config_file(tmp_path: Path, monkeypatch, **train: object) -> str:
    """A short toy run (three phases, four epochs) as ``tmp_path/toy.yaml``, with ``train`` keys added
    (e.g. seed), that this process and the runs it starts (compare's parallel runs) import the toy task
    for as ``tests.toy_task``; returns the file's path."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    settings = {
        "progress": "false",
        "tensorboard": "false",
        "eval_splits": "[test]",
        "num_threads": 1,
        **train,
    }
    path = tmp_path / "toy.yaml"
    path.write_text(
        "task: tests.toy_task:build_toy_task\nschedule: D2:1e-2,S1@0.5:1e-2,D1:1e-3\n"
        f"train: {{{', '.join(f'{key}: {value}' for key, value in settings.items())}}}\n"
    )
    return str(path)
