"""SIGKILL between the writes of a phase end (the kill points of dsd_seq.safe_io), then --resume: the
rerun finishes what the phase end left half done, and the run ends as one never interrupted.

Window 1: the step file holding the phase end is in place, ``phaseN-end.pt`` not yet linked.
Window 2: the final checkpoint is in place, ``results.json`` lacks its row.
"""

import json
from pathlib import Path

import pytest

from dsd_seq.safe_io import load_safely
from tests.toy_cli_runs import toy_config, train_until_killed

# 8 batches an epoch, 1 epoch a phase: phase ends at global steps 8, 16, 24
CONFIG = toy_config("D1:0.01,S1@0.5:0.01,D1:0.001", keep_checkpoints=1)


def _rows(exp: Path) -> list[dict]:
    rows = json.loads((exp / "results.json").read_text())["phases"]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    (tmp / "config.yaml").write_text(CONFIG)
    done = train_until_killed(tmp / "config.yaml", tmp / "exp")
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "exp"


@pytest.mark.parametrize(
    ("kill_at", "missing"),
    [
        ("phase-end-saved:1", "checkpoints/phase1-end.pt"),  # window 1, at the end of phase 1
        ("phase-end-saved:3", "checkpoints/phase3-end.pt"),  # window 1, at the end of the run
        ("phase-end-linked:3", None),  # window 2: the final checkpoint is there, its results row is not
    ],
)
def test_a_phase_end_cut_short_is_finished_on_the_next_start(tmp_path, reference, kill_at, missing):
    config, exp = tmp_path / "config.yaml", tmp_path / "exp"
    config.write_text(CONFIG)
    killed = train_until_killed(config, exp, kill_at)
    assert killed.returncode == -9, killed.stderr[-3000:]
    if missing:
        assert not (exp / missing).exists()
    phase = int(kill_at[-1])
    results = exp / "results.json"
    assert len(json.loads(results.read_text())["phases"] if results.exists() else []) == phase - 1
    done = train_until_killed(config, exp)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "finished the phase end a crash cut short" in done.stdout + done.stderr
    for n in (1, 2, 3):  # every phase end is named, and holds the state after that phase
        state = load_safely(exp / "checkpoints" / f"phase{n}-end.pt")
        assert state["position"]["global_step"] == 8 * n and state["phase_end"] == n
    assert _rows(exp) == _rows(reference)
    final, ref = (
        load_safely(exp / "checkpoints" / "last.pt"),
        load_safely(reference / "checkpoints" / "last.pt"),
    )
    for name, value in ref["model"].items():
        assert value.equal(final["model"][name]), name
