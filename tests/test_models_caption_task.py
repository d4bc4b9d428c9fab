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
