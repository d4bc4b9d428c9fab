"""egs/synth_speech/run.sh with SentencePiece units and speed perturbation: stage 1 trains the units from
the (perturbed) training transcripts, stage 2 trains on them; conf/transducer.yaml builds its model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsd_seq.core.selection import select_prunable
from dsd_seq.training.config import load_config
from models.speech.speech_task import build_model

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "synth_speech"


@pytest.mark.slow
def test_recipe_trains_bpe_units_on_speed_perturbed_data(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(RECIPE.parents[1])}
    command = [
        "bash", str(RECIPE / "run.sh"), "--config", str(RECIPE / "conf" / "tiny.yaml"),
        "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"), "--num-train", "12",
        "--num-dev", "3", "--num-test", "3", "--jobs", "1", "--units", "bpe", "--vocab-size", "30",
        "--speed-perturb", "0.9,1.1", "--stop-stage", "2", "--set", "task_args.max_bad_fraction=0.5",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "kept 36 of 36 utterances" in done.stdout  # 12 originals and two perturbed copies each
    assert (tmp_path / "data" / "lang_bpe30" / "units.model").is_file()
    events = [
        json.loads(line) for line in (tmp_path / "exp" / "dsd" / "metrics.jsonl").read_text().splitlines()
    ]
    assert events[0]["units"].endswith("lang_bpe30/units.model") and events[0]["num_classes"] == 31
    assert (tmp_path / "exp" / "dsd" / "checkpoints" / "phase1-end.pt").is_file()
    again = subprocess.run(
        command[:-2] + ["--stop-stage", "1"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "bpe units done already" in again.stdout
    bad = subprocess.run(command[:-4] + ["--units", "wordpiece"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "accepted char, bpe, unigram" in bad.stderr


def test_transducer_config_builds_a_transducer_with_a_dense_embedding():
    config = load_config(RECIPE / "conf" / "transducer.yaml")
    args = config.task_args
    model = build_model(args["model"], args["model_args"], num_features=40, num_classes=29)
    names = list(select_prunable(model, config.selection))
    assert "predictor.weight_hh_l0" in names and "joiner.weight" in names and "embedding.weight" not in names
    assert args["batch_frames"] > 0 and args["sorta_grad"] is True
