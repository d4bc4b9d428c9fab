"""A tiny end-to-end run of egs/synth_speech/run.sh: every stage, the real scripts, a few utterances."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "synth_speech"


@pytest.mark.slow
def test_recipe_runs_every_stage_and_writes_the_results_table(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(RECIPE.parents[1])}
    command = [
        "bash", str(RECIPE / "run.sh"), "--config", str(RECIPE / "conf" / "tiny.yaml"),
        "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"),
        "--num-train", "24", "--num-dev", "6", "--num-test", "6", "--jobs", "1",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert [(r["run"], r["label"]) for r in table["rows"]] == [
        ("DSD", "Dense"), ("DSD", "Sparse"), ("DSD", "Re-dense"), ("LLR", "Dense (LLR)"), ("LLR", "Dense (LLR)"),
    ]  # fmt: skip
    sparse = table["rows"][1]
    assert sparse["measured_sparsity"] >= 0.45
    assert table["rows"][-1]["cumulative_epochs"] == table["rows"][2]["cumulative_epochs"] == 3
    assert {"test wer", "test cer", "dev wer"} <= set(table["columns"])
    markdown = (tmp_path / "exp" / "results.md").read_text()
    assert "| DSD | Sparse |" in markdown and "Dense (LLR)" in markdown
    assert "results table:" in done.stdout
    assert list((tmp_path / "exp" / "dsd" / "tensorboard").iterdir())
    # re-running a finished stage is harmless: the trainer resumes at the end and does nothing
    again = subprocess.run(
        command + ["--stage", "2", "--stop-stage", "2"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-3000:]
