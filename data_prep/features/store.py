"""Every speech split's features on disk, read on demand: a Lhotse feature file plus a JSON manifest.

Why one store for every corpus: a ``torch.save`` cache is loaded whole by every process, so memory grows
with the corpus (LibriSpeech 960 h at 40 fp32 bins is ~55 GB per process). A store keeps only the manifest
(ids, transcripts, frame counts, storage keys) in memory and reads an utterance's frames when a batch needs
them; the speech dataset (:mod:`data_prep.batching.speech_dataset`) reads nothing else.

Two of Lhotse's writers, chosen when the store is written (``--storage``):

- ``numpy`` (``NumpyFilesWriter``, the default): one ``.npy`` file an utterance, float32 as computed, so a
  model trained from it sees exactly the numbers :func:`~data_prep.features.extraction.compute_features`
  made (the built-in corpora use it: their results do not move). 160 bytes a 40-bin frame.
- ``lilcom`` (``LilcomChunkyWriter``, the storage icefall/k2 use): measured on 40-bin fbank
  (benchmarks/data_scale.py --formats, see benchmarks/RESULTS.md) ~36 bytes a frame, read at 1.3-1.8 M
  frames/s at random; lossy (error at most 2^-6 = 0.016 on utterance-normalised features, far below the
  features' own noise). For the large corpora (LibriSpeech, WSJ).

Layout of a store directory (``data/feats/train/``): the features (``feats/`` or ``feats.lca``) and
``manifest.json`` (written last and atomically: a store without it is incomplete). Bad utterances are
skipped and counted at preparation (``data_prep.features.extraction``); a feature file that is missing or
truncated later is found when it is read and raised as :class:`FeatureStoreError` naming the file and
utterance. The manifest's lists are checked when the store is opened, and each utterance's stored bytes
against their CRC-32 (``checksums``) before they are decoded, so damage that still decodes is caught.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dsd_seq.safe_io import read_json_manifest, write_atomic

STORE_VERSION = 1
MANIFEST = "manifest.json"
TICK_POWER = -5  # lilcom: Lhotse's default, values kept to 2^-5 steps (error <= 2^-6)


@dataclass(frozen=True)
class Storage:
    """One Lhotse writer a store may use: its name in the manifest, its file or folder, its key form."""

    format: str  # the manifest's "format"
    chunks: str  # the manifest's "chunks": the feature file or folder inside the store
    key: re.Pattern  # what a storage key looks like


STORAGES = {
    "numpy": Storage("lhotse_numpy_files", "feats", re.compile(r"[^/.][^/]*/[^/]+\.npy")),  # lossless
    "lilcom": Storage("lhotse_lilcom_chunky", "feats.lca", re.compile(r"\d+(,\d+)*")),  # lossy, 2^-6
}
_BY_FORMAT = {storage.format: storage for storage in STORAGES.values()}


class FeatureStoreError(ValueError):
    """A feature store (manifest or feature file) is missing, incomplete, truncated or of another version."""


def rebuild_hint(directory: str | os.PathLike) -> str:
    return (
        f"rebuild it with `python -m data_prep.features --data-dir <data dir> --out {directory}` "
        "(the recipe's feature stage)"
    )


def _lhotse():
    import lhotse

    lhotse.set_caching_enabled(False)  # Lhotse memoises reads by default: memory would grow with the epoch
    return lhotse


class FeatureStoreWriter:
    """Writes utterances' features into ``directory`` one at a time (memory stays flat) with Lhotse's
    ``storage`` writer; :meth:`commit` writes the manifest, :meth:`abort` removes what was written."""

    def __init__(self, directory: str | os.PathLike, storage: str = "numpy") -> None:
        if storage not in STORAGES:
            raise ValueError(f"feature storage {storage!r}; accepted: {', '.join(STORAGES)}")
        self.directory = Path(directory)
        self.storage = STORAGES[storage]
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / MANIFEST).unlink(missing_ok=True)  # incomplete until committed
        _remove(self.directory / self.storage.chunks)  # an earlier attempt's files
        lhotse = _lhotse()
        if storage == "lilcom":
            self._writer = lhotse.LilcomChunkyWriter(
                self.directory / self.storage.chunks, tick_power=TICK_POWER
            )
        else:
            self._writer = lhotse.features.io.NumpyFilesWriter(self.directory / self.storage.chunks)
        self.utt_ids: list[str] = []
        self.texts: list[str] = []
        self.num_frames: list[int] = []
        self.storage_keys: list[str] = []
        self.num_features = 0

    def add(self, utt_id: str, text: str, features: torch.Tensor) -> None:
        if "/" in utt_id or utt_id.startswith("."):
            raise ValueError(f"utterance id {utt_id!r}: a store's ids hold no '/' and start with no '.'")
        array = features.detach().to(torch.float32).numpy().copy()  # lilcom quantises its input in place
        self.num_features = int(array.shape[1])
        self.storage_keys.append(self._writer.write(utt_id, array))
        self.utt_ids.append(utt_id)
        self.texts.append(text)
        self.num_frames.append(int(array.shape[0]))

    def _close(self) -> None:
        if hasattr(self._writer, "close"):  # LilcomChunkyWriter holds a file open; NumpyFilesWriter none
            self._writer.close()

    def commit(self, **metadata) -> Path:
        self._close()
        stored = _StoredBytes(self.directory / self.storage.chunks, self.storage)
        manifest = {
            "version": STORE_VERSION,
            "format": self.storage.format,
            "chunks": self.storage.chunks,
            "num_features": self.num_features,
            **metadata,
            "utt_ids": self.utt_ids,
            "texts": self.texts,
            "num_frames": self.num_frames,
            "storage_keys": self.storage_keys,
            "checksums": [zlib.crc32(stored.read(key)) for key in self.storage_keys],  # of the stored bytes
        }
        write_atomic(self.directory / MANIFEST, json.dumps(manifest).encode("utf-8"))
        return self.directory

    def abort(self) -> None:
        self._close()
        _remove(self.directory / self.storage.chunks)
        if not any(self.directory.iterdir()):
            self.directory.rmdir()  # the writer made it: nothing is left of the failed store


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class _StoredBytes:
    """An utterance's bytes as its storage keeps them: a byte range of the lilcom file (key
    "offset,chunk bytes,chunk bytes,...") or a whole ``.npy`` file (key "abc/utt.npy")."""

    def __init__(self, chunks: Path, storage: Storage) -> None:
        self.chunks, self.storage = chunks, storage

    def read(self, key: str) -> bytes:
        if self.storage.format == STORAGES["numpy"].format:
            return (self.chunks / key).read_bytes()
        offsets = [int(x) for x in key.split(",")]
        with self.chunks.open("rb") as f:
            f.seek(offsets[0])
            data = f.read(sum(offsets[1:]))
        if len(data) != sum(offsets[1:]):
            raise EOFError("ends past the end of the file (truncated)")
        return data


def _shape_problem(manifest: dict, storage: Storage) -> str | None:
    """What is wrong with the manifest's lists (types, lengths), or None."""
    lists = {key: manifest.get(key) for key in ("utt_ids", "texts", "num_frames", "storage_keys")}
    if "checksums" in manifest:
        lists["checksums"] = manifest["checksums"]
    for key, value in lists.items():
        if not isinstance(value, list):
            return f"{key} is not a list"
    lengths = {key: len(value) for key, value in lists.items()}
    if len(set(lengths.values())) != 1:
        return "its lists differ in length (" + ", ".join(f"{k} {n}" for k, n in lengths.items()) + ")"
    kinds = {"utt_ids": str, "texts": str, "storage_keys": str, "num_frames": int, "checksums": int}
    for key, value in lists.items():
        bad = next(
            (i for i, v in enumerate(value) if not isinstance(v, kinds[key]) or isinstance(v, bool)), None
        )
        if bad is not None:
            return (
                f"{key}[{bad}] is {value[bad]!r}, not {'a string' if kinds[key] is str else 'a whole number'}"
            )
    if any(n < 0 for n in lists["num_frames"]):
        return "num_frames holds a negative count"
    bad = next((k for k in lists["storage_keys"] if not storage.key.fullmatch(k)), None)
    if bad is not None:
        return f"storage key {bad!r} is not a {storage.format} key"
    n = manifest.get("num_features")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return f"num_features is {n!r}, not a positive whole number"
    if manifest.get("chunks") != storage.chunks:
        return f"chunks is {manifest.get('chunks')!r}, not {storage.chunks!r}"
    return None


def load_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a store, checked for version and completeness (errors say how to rebuild)."""
    directory = Path(directory)
    path = directory / MANIFEST
    rebuild = rebuild_hint(directory)
    missing = f"{path}: no manifest, so the feature store is missing or incomplete; {rebuild}"
    manifest = read_json_manifest(path, FeatureStoreError, missing, rebuild)
    if manifest.get("version") != STORE_VERSION:
        raise FeatureStoreError(
            f"{path}: not a version-{STORE_VERSION} feature store (found {manifest.get('version')!r}); {rebuild}"
        )
    storage = _BY_FORMAT.get(manifest.get("format"))
    if storage is None:
        raise FeatureStoreError(
            f"{path}: storage format {manifest.get('format')!r} is not one of {sorted(_BY_FORMAT)}; {rebuild}"
        )
    problem = _shape_problem(manifest, storage)
    if problem:
        raise FeatureStoreError(f"{path}: damaged manifest: {problem}; {rebuild}")
    return manifest


class FeatureStore:
    """Random access to a store's utterances: only the manifest is held, frames are read per call."""

    #: what a failed read raises (the speech dataset skips and counts these in training)
    read_errors: tuple[type[Exception], ...] = (FeatureStoreError,)

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        manifest = load_manifest(self.directory)
        self.manifest = manifest
        self.storage = _BY_FORMAT[manifest["format"]]
        self.chunks = self.directory / manifest["chunks"]
        self.num_features = int(manifest["num_features"])
        self.utt_ids: list[str] = manifest["utt_ids"]
        self.texts: list[str] = manifest["texts"]
        self.num_frames = np.asarray(manifest["num_frames"], dtype=np.int64)
        self._keys: list[str] = manifest["storage_keys"]
        self._checksums: list[int] | None = manifest.get("checksums")  # stores written before: none
        self._stored = _StoredBytes(self.chunks, self.storage)
        _lhotse()
        from lhotse.features.io import LilcomChunkyReader

        self._reader = None if self.storage is STORAGES["numpy"] else LilcomChunkyReader(self.chunks)

    def __len__(self) -> int:
        return len(self.utt_ids)

    def read(self, index: int) -> torch.Tensor:
        """Float32 ``[frames, num_features]`` of utterance ``index``; FeatureStoreError names the file and
        utterance if the feature file is missing, truncated or holds other frames than the manifest says."""
        utt_id = self.utt_ids[index]
        try:
            stored = self._verified(index)
            if self._reader is None:  # a .npy file, read as NumpyFilesReader does, from the checked bytes
                array = np.load(io.BytesIO(stored), allow_pickle=False)
            else:
                array = self._reader.read(self._keys[index])
        except FileNotFoundError as err:
            raise FeatureStoreError(
                f"{self.chunks}: feature file missing while reading utterance {utt_id}; rebuild the store"
            ) from err
        except (OSError, ValueError, EOFError) as err:
            raise FeatureStoreError(
                f"{self.chunks}: utterance {utt_id} cannot be read ({err}); the file is probably truncated or "
                "overwritten: rebuild the store"
            ) from err
        expected = (int(self.num_frames[index]), self.num_features)
        if array.shape != expected:
            raise FeatureStoreError(
                f"{self.chunks}: utterance {utt_id} has shape {tuple(array.shape)}, the manifest says {expected}; "
                "the file is probably truncated or overwritten: rebuild the store"
            )
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def _verified(self, index: int) -> bytes | None:
        """The utterance's stored bytes, checked against the manifest's CRC-32 (when it has them): flipped
        bytes that still decode would otherwise pass as features. None for a lilcom store written before
        checksums (its reader reads the bytes itself)."""
        if self._checksums is None and self._reader is not None:
            return None
        stored = self._stored.read(self._keys[index])
        if self._checksums is not None and zlib.crc32(stored) != self._checksums[index]:
            raise FeatureStoreError(
                f"{self.chunks}: utterance {self.utt_ids[index]} does not match its checksum (the file is "
                "damaged or overwritten): rebuild the store"
            )
        return stored

    def read_many(self, indices: Sequence[int]) -> list[torch.Tensor]:
        return [self.read(i) for i in indices]
