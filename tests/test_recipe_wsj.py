"""egs/wsj: the paper's configs (Tables 7 and 9) and run.sh end to end on a fixture of the LDC disc layout."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dsd_seq.core.schedule import Schedule
from dsd_seq.training.config import load_config
from models.speech.ctc import ctc_loss
from models.speech.speech_task import build_model
from tests.corpus_fixtures import synth_utterances, write_wsj_discs

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "wsj"


def _phases(config_name):
    config = load_config(RECIPE / "conf" / config_name)
    schedule = Schedule.from_config(config.schedule)
    return config, [(p.kind, p.epochs, p.lr, p.sparsity) for p in schedule]


def test_ds1_config_has_table_7_schedule_and_table_6_sizes():
    config, phases = _phases("ds1_table7.yaml")
    assert phases == [
        ("dense", 50, 8e-4, 0.0), ("sparse", 50, 5e-4, 0.5), ("dense", 50, 3e-4, 0.0),
        ("sparse", 50, 1e-4, 0.25), ("dense", 50, 3e-5, 0.0),
    ]  # fmt: skip
    assert config.train.optimizer == "nesterov" and config.task_args["model"] == "deepspeech1"
    model = build_model("deepspeech1", config.task_args["model_args"], num_features=161, num_classes=29)
    assert sum(p.numel() for p in model.parameters()) == 1_814_528 + 3 * 1_049_600 + 3_146_752 + 29_725


def test_ds2_config_has_table_9_schedule():
    config, phases = _phases("ds2_table9.yaml")
    assert phases == [
        ("dense", 20, 3e-4, 0.0), ("sparse", 20, 3e-4, 0.5), ("dense", 20, 3e-5, 0.0),
        ("sparse", 20, 3e-5, 0.25), ("dense", 20, 6e-6, 0.0),
    ]  # fmt: skip
    assert config.train.optimizer == "nesterov" and config.task_args["model"] == "deepspeech2_table8"
    model_args = config.task_args.get("model_args", {})
    with torch.device("meta"):
        model = build_model("deepspeech2_table8", model_args, num_features=161, num_classes=29)
    assert (
        sum(p.numel() for p in model.parameters())
        == 19_616 + 239_168 + 8_507_840 + 6 * 9_296_320 + 3_101_120 + 1760 * 29 + 29
    )


def test_ds2_table8_model_takes_one_training_step_on_the_cpu():
    """The 67M-parameter model of the WSJ DS2 config trains on a CPU: one step, batch 1, a short input."""
    config, _ = _phases("ds2_table9.yaml")
    torch.manual_seed(0)
    model = build_model("deepspeech2_table8", config.task_args.get("model_args", {}), 161, 29)
    optimizer = torch.optim.SGD(model.parameters(), lr=3e-4, momentum=0.9, nesterov=True)
    log_probs, lengths = model(torch.randn(1, 24, 161), torch.tensor([24]))
    loss = ctc_loss(log_probs, lengths, torch.tensor([[3, 1, 20]]), torch.tensor([3]))
    loss.backward()
    before = model.fc.weight.detach().clone()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.fc.weight)


@pytest.mark.parametrize(("config_name", "baseline", "epochs"), [
    ("ds1_table7.yaml", "D150:8e-4", 150), ("ds2_table9.yaml", "D60:3e-4", 60),
])  # fmt: skip
def test_the_dense_baseline_named_in_each_config_has_the_papers_epochs_and_lr(config_name, baseline, epochs):
    assert f"--baseline-schedule {baseline}" in (RECIPE / "conf" / config_name).read_text().replace(
        "\n#   ", " "
    )
    schedule = Schedule.parse(baseline)
    assert schedule.total_epochs == epochs and not schedule.has_sparse_phase


@pytest.mark.slow
def test_recipe_runs_end_to_end_on_the_ldc_disc_layout(tmp_path):
    utts = synth_utterances(tmp_path / "synth", 16, 4, 4)
    write_wsj_discs(tmp_path / "ldc", {"train_si284": utts["train"], "test_dev93": utts["dev"],
                                       "test_eval92": utts["test"]})  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(RECIPE.parents[1])}
    command = ["bash", str(RECIPE / "run.sh"), "--config", str(RECIPE / "conf" / "tiny.yaml"), "--data", "data",
               "--exp", "exp", "--num-bins", "40", "--baseline-schedule", "D2:8e-4", "--jobs", "1",
               "--paper-table", "table7"]  # fmt: skip
    missing = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "needs --wsj0 DIR and --wsj1 DIR" in missing.stderr
    command += ["--wsj0", "ldc/wsj0", "--wsj1", "ldc/wsj1"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for split in ("train", "dev", "test"):  # on-disk stores read on demand, not caches loaded whole
        assert (tmp_path / "data" / "feats" / split / "manifest.json").is_file(), split
        manifest = json.loads((tmp_path / "data" / "feats" / split / "manifest.json").read_text())
        assert manifest["format"] == "lhotse_lilcom_chunky", split  # the compact writer
    table = json.loads((tmp_path / "exp" / "results.json").read_text())
    for figure in ("weight_distribution", "training_curves", "layer_sparsity"):  # the report stage's figures
        assert (tmp_path / "exp" / "figures" / f"{figure}.png").stat().st_size > 5000
    labels = [r["label"] for r in table["rows"] if r["run"] == "DSD"]
    assert labels == ["Dense", "Sparse", "Re-dense"]
    assert table["rows"][1]["measured_sparsity"] == pytest.approx(0.5, abs=0.03)
    for run in ("dsd", "llr", "dense"):
        for split, count in (("dev", 4), ("test", 4)):
            decode = tmp_path / "exp" / run / f"decode_{split}"
            assert len((decode / "hyp.txt").read_text().splitlines()) == count
            assert (decode / "wer.txt").read_text().startswith("%WER ")
    assert "dense baseline (D2:8e-4): %WER" in done.stdout
    # the last stage exports the models and prints the command that transcribes three test files: it works
    printed = done.stdout.split("Try the trained model")[1].splitlines()[1]
    verb, model, demo = shlex.split(printed)[1:]
    assert verb == "transcribe" and (tmp_path / "exp" / "model" / "sparse" / "manifest.json").is_file()
    assert (
        json.loads((tmp_path / "exp" / "model" / "dsd" / "manifest.json").read_text())["provenance"]["phase"]
        == 3
    )
    used = subprocess.run([sys.executable, "-m", "dsd_seq.cli", verb, model, demo], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert used.returncode == 0 and len(used.stdout.splitlines()) == 3, used.stderr
    assert "3 of 3 done, 0 failed" in used.stderr
    report = (tmp_path / "exp" / "report.md").read_text()  # Table 7 beside the run, the baseline row too
    assert "| Dense Iter 0 | 0% | 50 | 0.0008 |" in report and "| 29.82 | 34.57 |" in report
    assert "| Baseline | 0% | 150 | 0.0008 |" in report and "| 28.03 | 33.55 |" in report
