"""The caption task refuses a checkpoint whose vocabulary differs from the data's, through the path a
user takes: resuming (or continuing with --init-from) `dsd-seq train` after the data was rebuilt."""

import json

import torch

from dsd_seq.cli import main
from dsd_seq.safe_io import save_atomic

WORDS_A = ["red", "blue", "green", "circle", "square", "ring"]
WORDS_B = ["red", "blue", "yellow", "circle", "square", "ring"]  # same size: shapes alone would not tell


def _write_data(folder, colours_and_shapes):
    entries = []
    for i in range(8):
        colour, shape = colours_and_shapes[i % 3], colours_and_shapes[3 + i % 3]
        captions = [["a", colour, shape], ["one", colour, shape, "here"]]
        entries.append({"filename": f"im{i}.jpg", "split": ("train", "train", "val", "test")[i % 4],
                        "sentences": [{"tokens": c} for c in captions]})  # fmt: skip
    (folder / "dataset_flickr8k.json").write_text(json.dumps({"images": entries}))
    features = {"kind": "caption_features", "encoder": "fixture", "image_ids": [f"im{i}.jpg" for i in range(8)],
                "features": torch.randn(8, 6, generator=torch.Generator().manual_seed(0)), "problems": {}}  # fmt: skip
    save_atomic(features, folder / "feats.pt")


def _config(folder):
    config = folder / "conf.yaml"
    config.write_text(
        "task: models.captioning.caption_task:build_task\n"
        f"task_args: {{dataset: '{folder / 'dataset_flickr8k.json'}', features: '{folder / 'feats.pt'}',"
        " vocab_min_count: 1, model_args: {embed_dim: 8, hidden: 8}, batch_size: 4}\n"
        "schedule: D1:1e-2,S1@0.8:1e-3\n"
        "selection: {types: [Linear, LSTM]}\n"
        "train: {num_threads: 1, tensorboard: false, progress: false, eval_splits: [dev]}\n"
    )
    return config


def test_resuming_on_data_with_another_vocabulary_is_refused_naming_the_words(tmp_path, capsys):
    _write_data(tmp_path, WORDS_A)
    config, exp = _config(tmp_path), tmp_path / "exp"
    assert main(["train", "--config", str(config), "--exp-dir", str(exp), "--until-phase", "1"]) == 0
    _write_data(tmp_path, WORDS_B)  # the data rebuilt in place, e.g. stage 0 re-run on other archives
    capsys.readouterr()
    assert main(["train", "--config", str(config), "--exp-dir", str(exp), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "vocabulary mismatch" in err and "checkpoints" in err  # names the checkpoint file
    assert "'green'" in err and "'yellow'" in err  # the first words that differ, checkpoint vs data
    assert not (exp / "checkpoints" / "phase2-end.pt").exists()
    # the LLR baseline's path (--init-from a phase-end checkpoint) is refused the same way
    code = main(["train", "--config", str(config), "--exp-dir", str(tmp_path / "llr"), "--baseline", "llr",
                 "--init-from", str(exp / "checkpoints" / "phase1-end.pt")])  # fmt: skip
    assert code == 2 and "vocabulary mismatch" in capsys.readouterr().err


def test_evaluate_reports_the_dev_loss_a_converging_phase_monitors(tmp_path):
    from models.captioning.caption_task import build_task

    _write_data(tmp_path, WORDS_A)
    task = build_task(dataset=str(tmp_path / "dataset_flickr8k.json"), features=str(tmp_path / "feats.pt"),
                      vocab_min_count=1, model_args={"embed_dim": 8, "hidden": 8}, batch_size=4)  # fmt: skip
    device = torch.device("cpu")
    before = task.evaluate("dev", device)
    assert {"bleu4", "loss"} <= set(before) and before["loss"] > 0
    optimizer = torch.optim.Adam(task.model.parameters(), lr=1e-2)
    for _ in range(30):  # fit the training captions; the dev split shares their words and shapes
        for batch in task.train_batches(torch.Generator().manual_seed(0)):
            optimizer.zero_grad()
            task.loss(batch, device, task.model).backward()
            optimizer.step()
    assert task.evaluate("dev", device)["loss"] < before["loss"]
    assert task.model.training  # evaluate leaves the mode as it found it


def _task(folder, **extra):
    from models.captioning.caption_task import build_task

    _write_data(folder, WORDS_A)
    return build_task(dataset=str(folder / "dataset_flickr8k.json"), features=str(folder / "feats.pt"),
                      vocab_min_count=1, model_args={"embed_dim": 8, "hidden": 8}, batch_size=4, **extra)  # fmt: skip


def test_evaluate_scores_the_captions_with_every_caption_metric(tmp_path):
    from dsd_seq.experiments.caption_metrics import caption_scores

    task = _task(tmp_path, metric="cider_d")
    assert task.metric == "cider_d" and task.higher_is_better
    scores = task.evaluate("test", torch.device("cpu"))
    assert set(scores) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider_d", "loss"}  # meteor off
    images, hypotheses = task.caption("test", torch.device("cpu"))
    assert {k: v for k, v in scores.items() if k != "loss"} == caption_scores(
        [im.captions for im in images], hypotheses
    )
    assert "METEOR off" in task.data_summary()["caption_metrics"]


def test_main_metric_and_meteor_choices_are_checked_where_the_config_is_read(tmp_path, monkeypatch, capsys):
    import pytest

    from dsd_seq.experiments import caption_metrics
    from dsd_seq.training.config import ConfigError

    with pytest.raises(ConfigError, match="task_args.metric must be one of bleu1, .*cider_d, got 'cider'"):
        _task(tmp_path, metric="cider")
    with pytest.raises(ConfigError, match="task_args.meteor must be one of off, auto, on"):
        _task(tmp_path, meteor="sometimes")
    with pytest.raises(ConfigError, match="task_args.metric is meteor, but METEOR off"):
        _task(tmp_path, metric="meteor")
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="meteor: on, but METEOR cannot run.*install one"):
        _task(tmp_path, meteor="on")
    capsys.readouterr()
    task = _task(tmp_path, meteor="auto")  # no Java: scored without METEOR, and the run says why
    assert "METEOR skipped: no Java runtime" in task.data_summary()["caption_metrics"]
    assert "caption task: METEOR skipped: no Java runtime" in capsys.readouterr().err
    assert "meteor" not in task.evaluate("dev", torch.device("cpu"))


def test_meteor_auto_scores_meteor_where_java_runs(tmp_path):
    import shutil

    import pytest

    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH: METEOR 1.5 is a Java program")
    task = _task(tmp_path, meteor="auto", metric="meteor")
    first = task.evaluate("dev", torch.device("cpu"))
    assert 0 <= first["meteor"] <= 100
    assert task.evaluate("dev", torch.device("cpu"))["meteor"] == first["meteor"]  # one process, reused
