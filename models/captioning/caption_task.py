"""The image-captioning task for the DSD trainer: Karpathy split file + cached image features in,
BLEU-1..4 (the paper's Sec. 4.3 and Table 5), CIDEr-D, ROUGE-L and optionally METEOR out (the COCO caption
evaluation). The main metric is ``task_args.metric``, BLEU-4 by default; all are higher-is-better.

Images whose features are missing (skipped at extraction) and empty captions are counted, never silently
dropped; more than ``max_bad_fraction`` of a split's images missing stops the run naming examples.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from data_prep.corpora.karpathy import CaptionImage, WordVocab, load_karpathy
from data_prep.images.image_features import load_feature_cache
from dsd_seq.experiments.bleu import SMOOTHING
from dsd_seq.experiments.caption_metrics import (
    CAPTION_METRICS,
    MeteorScorer,
    caption_scores,
    meteor_skip_reason,
)
from dsd_seq.training.config import ConfigError, check_number, from_dict
from models.captioning.neuraltalk import BOS, EOS, NeuralTalk, NeuralTalkConfig

#: the inference module of this task (``dsd-seq export``, ``dsd_seq.load_model``)
INFERENCE = "models.captioning.image_captioner"


class CaptionDataError(ValueError):
    """Too many images of a split cannot be used; the message counts them and names examples."""


@dataclass
class CaptionTaskConfig:
    dataset: str  # Karpathy split file (dataset_*.json)
    features: str  # image feature cache (data_prep.images.image_features)
    images: str = ""  # image folder, for example pages; default: images/ beside the dataset file
    vocab_min_count: int = 5  # NeuralTalk's threshold on Flickr8k
    max_length: int = 16  # words per caption in training (longer ones are cut and counted) and decoding
    model_args: dict[str, Any] = field(default_factory=dict)  # NeuralTalkConfig fields
    batch_size: int = 64
    eval_batch_size: int = 256
    beam_size: int = 1  # 1: greedy decoding
    length_penalty: float = 0.0  # beam ranking: log-prob / length ** length_penalty
    max_eval_images: int = 0  # score only the first N images of a held-out split; 0: all
    max_bad_fraction: float = 0.05
    metric: str = "bleu4"  # the main metric: bleu1..4, cider_d, rouge_l or (with meteor) meteor
    meteor: str = "off"  # off, auto (where Java runs) or on; METEOR starts a 2 GB Java process per run

    def __post_init__(self) -> None:
        """Ranges checked when the config is read, before the dataset is loaded, naming the key."""
        for key, low in (
            ("vocab_min_count", 1),
            ("max_length", 1),
            ("batch_size", 1),
            ("eval_batch_size", 1),
            ("beam_size", 1),
            ("max_eval_images", 0),
        ):
            check_number(f"task_args.{key}", getattr(self, key), low, 2**63, high_open=True, integer=True)
        check_number("task_args.length_penalty", self.length_penalty)
        check_number("task_args.max_bad_fraction", self.max_bad_fraction, 0.0, 1.0)
        if self.metric not in CAPTION_METRICS:
            raise ConfigError(
                f"task_args.metric must be one of {', '.join(CAPTION_METRICS)}, got {self.metric!r}"
            )
        try:
            self.meteor_skipped = meteor_skip_reason(self.meteor)
        except ValueError as err:
            raise ConfigError(f"task_args.{err}") from None
        if self.metric == "meteor" and self.meteor_skipped:
            raise ConfigError(f"task_args.metric is meteor, but {self.meteor_skipped}")


@dataclass
class CaptionBatch:
    features: torch.Tensor  # [B, D]
    inputs: torch.Tensor  # [B, T] <bos> w1 .. wn (padded with 0)
    targets: torch.Tensor  # [B, T] w1 .. wn <eos> (padded with 0, ignored by the loss)


class CaptionTask:
    higher_is_better = True
    #: METEOR only adds a score, so a resumed run may switch it on or off
    resumable_changes = ("task_args.meteor",)

    def __init__(self, config: CaptionTaskConfig):
        self.config = config
        self.metric = config.metric
        self.meteor = None if config.meteor_skipped else MeteorScorer()
        if config.meteor == "auto" and config.meteor_skipped:
            print(f"caption task: {config.meteor_skipped}", file=sys.stderr)
        data = load_karpathy(config.dataset, config.images or None)
        cache = load_feature_cache(config.features)
        row = {image_id: i for i, image_id in enumerate(cache["image_ids"])}
        self.features = cache["features"]
        self.problems: dict[str, Any] = {"reader": dict(data.problems), "reader_examples": data.examples,
                                         "extraction": {k: len(v) for k, v in cache.get("problems", {}).items()}}  # fmt: skip
        self.images: dict[str, list[CaptionImage]] = {}
        self.rows: dict[str, list[int]] = {}
        for split in ("train", "dev", "test"):
            listed = data.split(split)
            kept = [im for im in listed if im.image_id in row]
            missing = [im.image_id for im in listed if im.image_id not in row]
            if missing:
                self.problems[f"{split}_without_features"] = len(missing)
                if len(missing) / len(listed) > config.max_bad_fraction:
                    raise CaptionDataError(
                        f"{config.features}: {len(missing)} of {len(listed)} {split} images of {config.dataset} "
                        f"have no features (e.g. {missing[:3]}); re-run the feature stage, or raise "
                        f"task_args.max_bad_fraction (now {config.max_bad_fraction}) to go on without them"
                    )
            if kept:
                self.images[split] = kept
                self.rows[split] = [row[im.image_id] for im in kept]
        if "train" not in self.images:
            raise CaptionDataError(f"{config.dataset}: no training image with features and captions")
        self.vocab = WordVocab.build(
            [c for im in self.images["train"] for c in im.captions], config.vocab_min_count
        )
        self.splits = tuple(self.images)
        known = {f.name for f in dataclasses.fields(NeuralTalkConfig)} - {"feature_dim", "vocab_size"}
        unknown = sorted(set(config.model_args) - known)
        if unknown:
            raise ValueError(f"task_args.model_args: unknown key(s) {unknown}; accepted: {sorted(known)}")
        model_config = NeuralTalkConfig(
            feature_dim=self.features.shape[1], vocab_size=len(self.vocab), **config.model_args
        )
        self.model: nn.Module = NeuralTalk(model_config, self.vocab.to_list())
        self._build_sequences()

    def _build_sequences(self) -> None:
        """Every (image, caption) pair of training as padded <bos>/<eos> token rows, built once."""
        length = self.config.max_length + 1
        rows, inputs, targets, cut = [], [], [], 0
        for image, feature_row in zip(self.images["train"], self.rows["train"], strict=True):
            for caption in image.captions:
                ids, truncated = self.vocab.encode(caption, self.config.max_length)
                cut += truncated
                x, y = [BOS, *ids], [*ids, EOS]
                inputs.append(x + [0] * (length - len(x)))
                targets.append(y + [0] * (length - len(y)))
                rows.append(feature_row)
        self.train_rows = torch.tensor(rows)
        self.train_inputs = torch.tensor(inputs)
        self.train_targets = torch.tensor(targets)
        self.problems["truncated_captions"] = cut

    def _teacher_forced(self, pairs: list[tuple[int, str]]) -> CaptionBatch:
        """(feature row, caption) pairs as one padded <bos>/<eos> batch, as training sees them."""
        encoded = [[*self.vocab.encode(caption, self.config.max_length)[0]] for _, caption in pairs]
        length = max(len(ids) for ids in encoded) + 1
        inputs = [[BOS, *ids] + [0] * (length - len(ids) - 1) for ids in encoded]
        targets = [[*ids, EOS] + [0] * (length - len(ids) - 1) for ids in encoded]
        rows = torch.tensor([row for row, _ in pairs])
        return CaptionBatch(self.features[rows], torch.tensor(inputs), torch.tensor(targets))

    # Task interface -----------------------------------------------------------------------------------
    def train_batches(self, generator: torch.Generator, epoch: int = 0) -> list[CaptionBatch]:
        """Shuffled (image, caption) pairs; every epoch alike, so ``epoch`` is not used."""
        order = torch.randperm(len(self.train_rows), generator=generator)
        batches = []
        for idx in order.split(self.config.batch_size):
            targets = self.train_targets[idx]
            t = int((targets > 0).sum(1).max())  # trim padding shared by the whole batch
            batches.append(
                CaptionBatch(self.features[self.train_rows[idx]], self.train_inputs[idx, :t], targets[:, :t])
            )
        return batches

    def loss(self, batch: CaptionBatch, device: torch.device, model: nn.Module) -> torch.Tensor:
        logits = model(batch.features.to(device), batch.inputs.to(device))
        return nn.functional.cross_entropy(
            logits.flatten(0, 1), batch.targets.to(device).flatten(), ignore_index=0
        )

    def caption(self, split: str, device: torch.device) -> tuple[list[CaptionImage], list[list[str]]]:
        """The split's images (up to ``max_eval_images``) and the model's caption of each."""
        if split not in self.images:
            raise ValueError(
                f"split {split!r} has no images with features; this data has {list(self.images)}"
            )
        n = self.config.max_eval_images or len(self.images[split])
        images, rows = self.images[split][:n], self.rows[split][:n]
        feats = self.features[rows].to(device)
        was_training = self.model.training
        self.model.eval()
        ids: list[list[int]] = []
        with torch.no_grad():
            if self.config.beam_size == 1:
                for chunk in feats.split(self.config.eval_batch_size):
                    ids += self.model.greedy(chunk, self.config.max_length)
            else:
                ids = [self.model.beam_search(f, self.config.beam_size, self.config.max_length, self.config.length_penalty)
                       for f in feats]  # fmt: skip
        self.model.train(was_training)
        return images, [self.vocab.decode([*seq, EOS]) for seq in ids]

    def evaluate(self, split: str, device: torch.device) -> dict[str, float]:
        images, hypotheses = self.caption(split, device)
        scores = caption_scores([im.captions for im in images], hypotheses, self.meteor)
        return {**scores, "loss": self.split_loss(split, device)}

    def split_loss(self, split: str, device: torch.device) -> float:
        """Teacher-forced cross-entropy per word on the split's reference captions (the images scored):
        the dev loss a phase that ends at convergence monitors."""
        n = self.config.max_eval_images or len(self.images[split])
        rows = self.rows[split][:n]
        refs = [
            (row, caption)
            for row, image in zip(rows, self.images[split][:n], strict=True)
            for caption in image.captions
        ]
        was_training = self.model.training
        self.model.eval()
        total, words = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(refs), self.config.eval_batch_size):
                chunk = refs[start : start + self.config.eval_batch_size]
                batch = self._teacher_forced(chunk)
                logits = self.model(batch.features.to(device), batch.inputs.to(device))
                targets = batch.targets.to(device).flatten()
                total += float(
                    nn.functional.cross_entropy(
                        logits.flatten(0, 1), targets, ignore_index=0, reduction="sum"
                    )
                )
                words += int((targets != 0).sum())
        self.model.train(was_training)
        return total / max(words, 1)

    def data_summary(self) -> dict[str, Any]:
        return {
            "images": {split: len(v) for split, v in self.images.items()},
            "train_captions": len(self.train_rows),
            "vocabulary": len(self.vocab),
            "bleu_smoothing": SMOOTHING,
            "caption_metrics": "BLEU: nltk on the split file's tokens; CIDEr-D, ROUGE-L, METEOR: coco-caption's "
            "scorers (pycocoevalcap) on PTB tokens; all on 0-100"
            + (f". {self.config.meteor_skipped}" if self.config.meteor_skipped else ""),
            "problems": self.problems,
        }


def build_task(**task_args: Any) -> CaptionTask:
    """Factory named in recipe configs as ``models.captioning.caption_task:build_task``."""
    return CaptionTask(from_dict(CaptionTaskConfig, task_args, "task_args"))
