"""A speech dataset over an on-disk feature store, with the interface of ``FeatureDataset``.

Only the manifest's ids, transcripts and frame counts are held; features are read from the store and
labels encoded from the transcript when an item is asked for, so memory does not grow with the corpus
(a label tensor per utterance alone would cost ~1.6 kB each, ~450 MB for LibriSpeech 960 h).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from data_prep.batch_sampler import SkippedUtterances, read_items
from data_prep.feature_store import FeatureStore, FeatureStoreError
from data_prep.speech_dataset import SpeechBatch, collate_speech


class EncodedLabels(Sequence):
    """Label tensors of transcripts, encoded on access (a view: nothing is stored)."""

    def __init__(self, texts: Sequence[str], encode: Callable[[str], list[int]]) -> None:
        self.texts = texts
        self.encode = encode

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor(self.encode(self.texts[index]), dtype=torch.int64)


class StoredFeatureDataset(Dataset):
    """Items ``utt_id``, ``features`` [T, F] (read from disk), ``labels`` [L], ``text`` of a store."""

    def __init__(
        self,
        store: FeatureStore | str | os.PathLike,
        encode: Callable[[str], list[int]],
        rows: Sequence[int] | None = None,
    ) -> None:
        self.store = store if isinstance(store, FeatureStore) else FeatureStore(store)
        self.encode = encode
        self.rows = np.arange(len(self.store), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        whole = rows is None
        self.utt_ids: list[str] = self.store.utt_ids if whole else [self.store.utt_ids[r] for r in self.rows]
        self.texts: list[str] = self.store.texts if whole else [self.store.texts[r] for r in self.rows]
        self.labels = EncodedLabels(self.texts, encode)
        self.skipped: SkippedUtterances | None = None  # set by the task for training data

    @property
    def cache(self) -> dict:
        """The store's manifest metadata (vocabulary, feature config, problems), like a cache's keys."""
        return self.store.manifest

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return {
            "utt_id": self.utt_ids[index],
            "features": self.store.read(int(self.rows[index])),
            "labels": self.labels[index],
            "text": self.texts[index],
        }

    @property
    def feature_dim(self) -> int:
        return self.store.num_features

    def frame_lengths(self) -> list[int]:
        return self.store.num_frames[self.rows].tolist()

    def subset(self, indices: Sequence[int]) -> StoredFeatureDataset:
        """The items at ``indices`` (in that order), reading from the same store."""
        return StoredFeatureDataset(self.store, self.encode, self.rows[np.asarray(indices, np.int64)])

    def collate(self, indices: Sequence[int]) -> SpeechBatch:
        """The padded batch of ``indices``; with ``skipped`` set, unreadable utterances are left out and
        counted (see :func:`data_prep.batch_sampler.read_items`)."""
        return collate_speech(
            read_items(self.__getitem__, indices, self.utt_ids, self.skipped, (FeatureStoreError,))
        )
