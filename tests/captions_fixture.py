"""Shared fixture builders for the captioning tests: a tiny synthetic set made by the project's own
generator, a briefly pretrained small CNN, and its feature cache (all in the real on-disk formats)."""

from __future__ import annotations

from pathlib import Path

from data_prep.image_features import extract_features
from data_prep.synth_captions import SynthCaptionsConfig, generate
from models import small_cnn


def make_captions_data(
    root: Path, num_train: int = 40, num_val: int = 8, num_test: int = 8
) -> dict[str, str]:
    dataset = generate(
        root / "corpus", SynthCaptionsConfig(num_train=num_train, num_val=num_val, num_test=num_test, seed=1)
    )
    config = small_cnn.PretrainConfig(num_images=32, epochs=1, batch_size=16)
    small_cnn.save(small_cnn.pretrain(config, log=lambda *_: None), root / "encoder.pt", config)
    extract_features(dataset, root / "feats.pt", "small_cnn", root / "encoder.pt")
    return {"dataset": str(dataset), "features": str(root / "feats.pt"), "encoder": str(root / "encoder.pt")}
