"""A tiny NeuralTalk trained by ``dsd-seq train`` on the built-in caption set, for the export tests
(tests/test_export_caption.py, tests/test_export_deployment.py): the corpus, the small CNN encoder
pretrained briefly, its cached features and the run, in one folder."""

from __future__ import annotations

from pathlib import Path

from data_prep.corpora.synth_captions import SynthCaptionsConfig, generate
from data_prep.images.image_features import extract_features
from data_prep.images.small_cnn_encoder import PretrainConfig, pretrain, save
from dsd_seq.cli import main


def train_tiny_captioner(
    root: Path,
    corpus: SynthCaptionsConfig,
    pretrain_images: int,
    model_args: str,
    batch_size: int,
    schedule: str,
) -> tuple[Path, Path]:
    """Train NeuralTalk (``model_args``, a YAML mapping) with ``schedule`` into ``root/exp``; returns the
    caption set's split file and the run config."""
    dataset = generate(root / "corpus", corpus)
    config = PretrainConfig(num_images=pretrain_images, epochs=1)
    save(pretrain(config, log=lambda _: None), root / "encoder.pt", config)
    extract_features(dataset, root / "feats.pt", "small_cnn", root / "encoder.pt")
    conf = root / "conf.yaml"
    conf.write_text(
        "task: models.captioning.caption_task:build_task\n"
        f"task_args: {{dataset: '{dataset}', features: '{root / 'feats.pt'}', vocab_min_count: 1,"
        f" model_args: {model_args}, batch_size: {batch_size}}}\n"
        f"schedule: {schedule}\n"
        "selection: {types: [Linear, LSTM]}\n"
        "train: {num_threads: 1, tensorboard: false, progress: false, eval_splits: [dev]}\n"
    )
    assert main(["train", "--config", str(conf), "--exp-dir", str(root / "exp")]) == 0
    return dataset, conf
