"""Speech batches for CTC training: a Dataset over a feature cache, padding, and length-bucketed batches.

Batches of similar length waste little compute on padding (DeepSpeech 2 sorts by length, "SortaGrad");
shuffling the order of the buckets keeps epochs from always presenting the same sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


@dataclass
class SpeechBatch:
    """Padded features ``[B, Tmax, F]`` and labels ``[B, Lmax]`` (padded with 0, the blank) with lengths."""

    features: torch.Tensor
    feature_lengths: torch.Tensor
    labels: torch.Tensor
    label_lengths: torch.Tensor
    utt_ids: list[str]
    texts: list[str]

    def to(self, device: torch.device | str) -> SpeechBatch:
        return SpeechBatch(
            self.features.to(device),
            self.feature_lengths.to(device),
            self.labels.to(device),
            self.label_lengths.to(device),
            self.utt_ids,
            self.texts,
        )

    def pin_memory(self) -> SpeechBatch:
        """Page-locked copies (DataLoader's ``pin_memory`` calls this), for faster copies to a GPU."""
        return SpeechBatch(
            self.features.pin_memory(),
            self.feature_lengths.pin_memory(),
            self.labels.pin_memory(),
            self.label_lengths.pin_memory(),
            self.utt_ids,
            self.texts,
        )


class FeatureDataset(Dataset):
    """A loaded feature cache; items: dicts of ``utt_id``, ``features`` [T, F], ``labels`` [L], ``text``."""

    def __init__(self, cache: dict) -> None:
        for key in ("utt_ids", "texts", "features", "labels"):
            if key not in cache:
                raise ValueError(f"FeatureDataset: cache lacks {key!r}; rebuild it with data_prep.features")
        n = len(cache["utt_ids"])
        if not all(len(cache[k]) == n for k in ("texts", "features", "labels")):
            raise ValueError("FeatureDataset: cache lists have different lengths; rebuild it")
        self.cache = cache
        self.utt_ids: list[str] = list(cache["utt_ids"])
        self.texts: list[str] = list(cache["texts"])
        self.features: list[torch.Tensor] = list(cache["features"])
        self.labels: list[torch.Tensor] = list(cache["labels"])

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __getitem__(self, index: int) -> dict:
        return {
            "utt_id": self.utt_ids[index],
            "features": self.features[index],
            "labels": self.labels[index],
            "text": self.texts[index],
        }

    @property
    def feature_dim(self) -> int:
        return int(self.features[0].shape[1]) if self.features else 0

    def frame_lengths(self) -> list[int]:
        return [int(f.shape[0]) for f in self.features]

    def subset(self, indices: Sequence[int]) -> FeatureDataset:
        """A dataset of the items at ``indices`` (in that order)."""
        lists = {
            k: [getattr(self, k)[i] for i in indices] for k in ("utt_ids", "texts", "features", "labels")
        }
        return FeatureDataset({**self.cache, **lists})


def collate_speech(items: Sequence[dict]) -> SpeechBatch:
    """Zero-pad features and labels of ``items`` into one batch (order kept)."""
    if not items:
        raise ValueError("collate_speech: empty list of items")
    feats = [it["features"] for it in items]
    labels = [it["labels"] for it in items]
    feature_lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
    label_lengths = torch.tensor([lab.numel() for lab in labels], dtype=torch.int64)
    batch_feats = feats[0].new_zeros(len(items), int(feature_lengths.max()), feats[0].shape[1])
    batch_labels = torch.zeros(len(items), max(int(label_lengths.max()), 1), dtype=torch.int64)
    for i, (f, lab) in enumerate(zip(feats, labels, strict=True)):
        batch_feats[i, : f.shape[0]] = f
        batch_labels[i, : lab.numel()] = lab
    return SpeechBatch(
        features=batch_feats,
        feature_lengths=feature_lengths,
        labels=batch_labels,
        label_lengths=label_lengths,
        utt_ids=[it["utt_id"] for it in items],
        texts=[it["text"] for it in items],
    )


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator | None = None
) -> list[list[int]]:
    """Index batches of similar length (sorted by length, ties by index), order shuffled by ``generator``.

    With no generator the batches come shortest first (DeepSpeech 2's SortaGrad first epoch).
    """
    if batch_size < 1:
        raise ValueError(f"length_sorted_batches: batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if generator is None:
        return batches
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in perm]
