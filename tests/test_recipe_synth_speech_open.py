"""A tiny end-to-end run of egs/synth_speech_open/run.sh: every stage, the real scripts, a few utterances."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "synth_speech_open"


@pytest.mark.slow
def test_recipe_runs_every_stage_with_a_phase_ended_at_convergence(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(RECIPE.parents[1])}
    command = [
        "bash", str(RECIPE / "run.sh"), "--config", str(RECIPE / "conf" / "tiny.yaml"),
        "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"),
        "--num-train", "24", "--num-dev", "8", "--num-test", "8", "--num-test-far", "8", "--speakers", "6",
        "--vocabulary", "500", "--jobs", "2",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    corpus = json.loads((tmp_path / "data" / "corpus" / "corpus.json").read_text())
    assert corpus["config"]["vocabulary"] == 500
    assert corpus["config"]["train_speakers"] == 6 and corpus["num_utterances"]["test_far"] == 8
    assert not {"hall", "telephone"} & set(
        corpus["conditions_heard"]["train"] + corpus["conditions_heard"]["test"]
    )
    assert (tmp_path / "data" / "feats" / "test_far" / "manifest.json").is_file()
    table = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert [(r["run"], r["label"]) for r in table["rows"]] == [
        ("DSD", "Dense"), ("DSD", "Sparse"), ("DSD", "Re-dense"), ("LLR", "Dense (LLR)"), ("LLR", "Dense (LLR)"),
    ]  # fmt: skip
    assert table["rows"][1]["measured_sparsity"] >= 0.45
    dsd = json.loads((tmp_path / "exp" / "dsd" / "results.json").read_text())
    dense = dsd["phases"][0]
    assert dense["max_epochs"] == 2 and 1 <= dense["epochs"] <= 2  # ended by the dev loss or its maximum
    # the LLR baseline trains the epochs the DSD run realized
    assert (
        table["rows"][-1]["cumulative_epochs"] == table["rows"][2]["cumulative_epochs"] == dense["epochs"] + 2
    )
    assert {"test wer", "dev wer", "test_far wer"} <= set(table["columns"])
    assert (tmp_path / "exp" / "model" / "sparse" / "manifest.json").is_file()
    assert "Try the trained model" in done.stdout
    # stage 5 also decodes test and test_far with a bigram LM of the training transcripts
    assert (tmp_path / "data" / "lang_lm" / "bigram.arpa").is_file()
    for run in ("dsd", "llr"):
        for split in ("test", "test_far"):
            assert (
                (tmp_path / "exp" / run / "lm" / f"decode_{split}" / "wer.txt").read_text().startswith("%WER")
            )
