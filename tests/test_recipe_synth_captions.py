"""A tiny end-to-end run of egs/synth_captions/run.sh: every stage, the real scripts, a few images."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "synth_captions"


@pytest.mark.slow
def test_recipe_runs_every_stage_and_writes_table_5_and_example_pages(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(RECIPE.parents[1])}
    command = [
        "bash", str(RECIPE / "run.sh"), "--config", str(RECIPE / "conf" / "tiny.yaml"),
        "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"),
        "--num-train", "40", "--num-val", "8", "--num-test", "8", "--encoder-images", "32", "--encoder-epochs", "1",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert [(r["run"], r["label"]) for r in table["rows"]] == [
        ("DSD", "Dense"), ("DSD", "Sparse"), ("DSD", "Re-dense"), ("LLR", "Dense (LLR)"), ("LLR", "Dense (LLR)"),
    ]  # fmt: skip
    assert table["rows"][1]["measured_sparsity"] >= 0.75
    assert not any(k.startswith("embed") for k in table["rows"][1]["layer_sparsity"])
    assert {f"test bleu{n}" for n in range(1, 5)} <= set(table["columns"])
    markdown = (tmp_path / "exp" / "results.md").read_text()
    assert "| DSD | Sparse |" in markdown and "higher is better" in markdown
    examples = (tmp_path / "exp" / "examples.md").read_text()
    assert "| # | image | Dense | Sparse | Re-dense | LLR | a reference |" in examples
    assert (tmp_path / "exp" / "examples.png").is_file()
    for figure in ("weight_distribution", "training_curves", "layer_sparsity"):  # the report stage's figures
        assert (tmp_path / "exp" / "figures" / f"{figure}.png").stat().st_size > 5000
