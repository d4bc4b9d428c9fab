"""Speech batches: the one speech dataset, over any feature store; padding; length-sorted batches.

Whatever holds a split's features (a store written by the feature stage, lossless or lilcom, or a Kaldi
data dir computed on the fly: :mod:`data_prep.features.sources`), :class:`SpeechDataset` reads it the same
way. Only the ids, transcripts and frame counts are held; features are read and labels encoded from the
transcript when an item is asked for, so memory does not grow with the corpus (a label tensor per
utterance alone would cost ~1.6 kB each, ~450 MB for LibriSpeech 960 h).

Batches of similar length waste little compute on padding (DeepSpeech 2 sorts by length, "SortaGrad");
shuffling the order of the buckets keeps epochs from always presenting the same sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from data_prep.batching.batch_sampler import SkippedUtterances, read_items
from data_prep.features.sources import FeatureSource


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


class EncodedLabels(Sequence):
    """Label tensors of transcripts, encoded on access (a view: nothing is stored)."""

    def __init__(self, texts: Sequence[str], encode: Callable[[str], list[int]]) -> None:
        self.texts = texts
        self.encode = encode

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor(self.encode(self.texts[index]), dtype=torch.int64)


class SpeechDataset(Dataset):
    """Items ``utt_id``, ``features`` [T, F] (read from the source), ``labels`` [L] (``encode`` of the
    transcript), ``text`` of a feature source, or of its ``rows`` in that order."""

    def __init__(
        self, source: FeatureSource, encode: Callable[[str], list[int]], rows: Sequence[int] | None = None
    ) -> None:
        self.source = source
        self.encode = encode
        self.rows = np.arange(len(source), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        whole = rows is None
        self.utt_ids: list[str] = source.utt_ids if whole else [source.utt_ids[r] for r in self.rows]
        self.texts: list[str] = source.texts if whole else [source.texts[r] for r in self.rows]
        self.labels = EncodedLabels(self.texts, encode)
        self.skipped: SkippedUtterances | None = None  # set by the task for training data

    @property
    def metadata(self) -> dict:
        """The source's manifest: vocabulary, feature config, preparation problems."""
        return self.source.manifest

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return {
            "utt_id": self.utt_ids[index],
            "features": self.source.read(int(self.rows[index])),
            "labels": self.labels[index],
            "text": self.texts[index],
        }

    @property
    def feature_dim(self) -> int:
        return self.source.num_features

    def frame_lengths(self) -> list[int]:
        return self.source.num_frames[self.rows].tolist()

    def subset(self, indices: Sequence[int]) -> SpeechDataset:
        """The items at ``indices`` (in that order), reading from the same source."""
        return SpeechDataset(self.source, self.encode, self.rows[np.asarray(indices, np.int64)])

    def collate(self, indices: Sequence[int]) -> SpeechBatch:
        """The padded batch of ``indices``; with ``skipped`` set, utterances that cannot be read are left
        out and counted (see :func:`data_prep.batching.batch_sampler.read_items`)."""
        return collate_speech(
            read_items(self.__getitem__, indices, self.utt_ids, self.skipped, self.source.read_errors)
        )


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
