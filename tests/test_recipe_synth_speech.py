"""A tiny end-to-end run of egs/synth_speech/run.sh: every stage, the real scripts, a few utterances.

Its data and exp folders have spaces, quotes, a colon, braces and a ``$(...)`` in their names: a recipe
must pass paths through without the shell or the YAML parser reading anything into them.
"""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "synth_speech"


@pytest.mark.slow
def test_recipe_runs_every_stage_and_writes_the_results_table(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(RECIPE.parents[1])}
    tmp_path = tmp_path / 'it\'s a "run": {x} $(touch pwned)'
    tmp_path.mkdir()
    command = [
        "bash", str(RECIPE / "run.sh"), "--config", str(RECIPE / "conf" / "tiny.yaml"),
        "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"),
        "--num-train", "24", "--num-dev", "6", "--num-test", "6", "--jobs", "1",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for split in ("train", "dev", "test"):  # the one store, with the lossless writer
        manifest = json.loads((tmp_path / "data" / "feats" / split / "manifest.json").read_text())
        assert manifest["format"] == "lhotse_numpy_files", split
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
    assert "![Weight distribution" in (tmp_path / "exp" / "report.md").read_text()
    for figure in ("weight_distribution", "training_curves", "layer_sparsity"):  # the report stage's figures
        assert (tmp_path / "exp" / "figures" / f"{figure}.png").stat().st_size > 5000
    assert list((tmp_path / "exp" / "dsd" / "tensorboard").iterdir())
    assert not list(Path.cwd().glob("pwned")) and not list(RECIPE.glob("pwned"))
    # the last stage exports the models and prints the command that transcribes its demo WAVs: it works
    printed = done.stdout.split("Try the trained model")[1].splitlines()[1]
    verb, model, demo = shlex.split(printed)[1:]
    assert verb == "transcribe" and (tmp_path / "exp" / "model" / "sparse" / "manifest.json").is_file()
    used = subprocess.run([sys.executable, "-m", "dsd_seq.cli", verb, model, demo], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert used.returncode == 0 and len(used.stdout.splitlines()) == 3, used.stderr
    # re-running is harmless: data stages are skipped, training stages resume at their end
    weights = (tmp_path / "exp" / "dsd" / "checkpoints" / "last.pt").read_bytes()
    again = subprocess.run(
        command + ["--stop-stage", "2"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "corpus done already" in again.stdout and "features done already" in again.stdout
    assert (tmp_path / "exp" / "dsd" / "checkpoints" / "last.pt").read_bytes() == weights
    # a changed parameter, or a stage left half-done, redoes the stage from scratch
    (tmp_path / "data" / "corpus" / "half-written.wav").write_bytes(b"")
    bigger = command[:-8] + ["--num-train", "26", "--num-dev", "6", "--num-test", "6", "--jobs", "1"]
    redo = subprocess.run(
        bigger + ["--stop-stage", "1"], env=env, capture_output=True, text=True, timeout=300
    )
    assert redo.returncode == 0, redo.stderr[-3000:]
    assert "done already" not in redo.stdout
    assert not (tmp_path / "data" / "corpus" / "half-written.wav").exists()
    assert len((tmp_path / "data" / "corpus" / "data" / "train" / "text").read_text().splitlines()) == 26
    # the finished runs were trained on the old features: resuming them on the new ones is refused
    stale = subprocess.run(bigger + ["--stage", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert stale.returncode == 1 and "was trained on other data" in stale.stderr
