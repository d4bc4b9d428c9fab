"""Features on disk, read on demand: a Lhotse lilcom-chunky file plus a JSON manifest per split.

Why: a ``torch.save`` cache is loaded whole by every process, so memory grows with the corpus (LibriSpeech
960 h at 40 fp32 bins is ~55 GB per process). A store keeps only the manifest (ids, transcripts, frame
counts, byte offsets) in memory and reads an utterance's frames when a batch needs them.

Why Lhotse's ``LilcomChunkyWriter`` (the storage icefall/k2 use): measured on 40-bin fbank
(benchmarks/data_scale.py --formats, see benchmarks/RESULTS.md) it takes ~36 bytes a frame against 160 for
fp32 (kaldiio ark, Lhotse HDF5), reads at 1.3-1.8 M frames/s at random, and its quantisation error (at most
2^-6 = 0.016 on utterance-normalised features) is far below the features' own noise. It is lossy: a model
trained from a store sees slightly different numbers than one trained from the ``.pt`` cache.

Layout of a store directory (``data/feats/train/``): ``feats.lca`` (the chunks) and ``manifest.json``
(written last and atomically: a store without it is incomplete). Bad utterances are skipped and counted at
preparation exactly as for the cache (``data_prep.features``); a chunk file that is missing or truncated
later is found when it is read and raised as :class:`FeatureStoreError` naming the file and utterance.
The manifest's lists are checked when the store is opened, and each utterance's compressed bytes
against their CRC-32 (``checksums``) before they are decoded, so damage that still decodes is caught.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dsd_seq.safe_io import read_json_manifest, write_atomic

STORE_VERSION = 1
STORE_FORMAT = "lhotse_lilcom_chunky"
MANIFEST = "manifest.json"
CHUNKS = "feats.lca"
TICK_POWER = -5  # Lhotse's default: values are kept to 2^-5 steps (error <= 2^-6)


class FeatureStoreError(ValueError):
    """A feature store (manifest or chunk file) is missing, incomplete, truncated or of another version."""


def is_feature_store(path: str | os.PathLike) -> bool:
    """True if ``path`` is a store directory (as opposed to a ``.pt`` feature cache)."""
    return Path(path).is_dir()


def _lhotse():
    import lhotse

    lhotse.set_caching_enabled(False)  # Lhotse memoises reads by default: memory would grow with the epoch
    return lhotse


class FeatureStoreWriter:
    """Appends utterances' features to ``<directory>/feats.lca`` one at a time (memory stays flat);
    :meth:`commit` writes the manifest, :meth:`abort` removes what was written."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / MANIFEST).unlink(missing_ok=True)  # incomplete until committed
        self._writer = _lhotse().LilcomChunkyWriter(self.directory / CHUNKS, tick_power=TICK_POWER)
        self.utt_ids: list[str] = []
        self.texts: list[str] = []
        self.num_frames: list[int] = []
        self.storage_keys: list[str] = []
        self.num_features = 0

    def add(self, utt_id: str, text: str, features: torch.Tensor) -> None:
        array = features.detach().to(torch.float32).numpy().copy()  # lilcom quantises its input in place
        self.num_features = int(array.shape[1])
        self.storage_keys.append(self._writer.write(utt_id, array))
        self.utt_ids.append(utt_id)
        self.texts.append(text)
        self.num_frames.append(int(array.shape[0]))

    def commit(self, **metadata) -> Path:
        self._writer.close()
        checksums = _checksums(self.directory / CHUNKS, self.storage_keys)
        manifest = {
            "version": STORE_VERSION,
            "format": STORE_FORMAT,
            "chunks": CHUNKS,
            "num_features": self.num_features,
            **metadata,
            "utt_ids": self.utt_ids,
            "texts": self.texts,
            "num_frames": self.num_frames,
            "storage_keys": self.storage_keys,
            "checksums": checksums,  # CRC-32 of each utterance's compressed bytes
        }
        write_atomic(self.directory / MANIFEST, json.dumps(manifest).encode("utf-8"))
        return self.directory

    def abort(self) -> None:
        self._writer.close()
        (self.directory / CHUNKS).unlink(missing_ok=True)


def _extent(key: str) -> tuple[int, int]:
    """(first byte, byte count) of an utterance in the chunk file, from its Lhotse storage key
    ("offset,chunk bytes,chunk bytes,...")."""
    offsets = [int(x) for x in key.split(",")]
    return offsets[0], sum(offsets[1:])


def _checksums(chunks: Path, keys: list[str]) -> list[int]:
    with chunks.open("rb") as f:
        out = []
        for key in keys:
            start, size = _extent(key)
            f.seek(start)
            out.append(zlib.crc32(f.read(size)))
        return out


_KEY = re.compile(r"\d+(,\d+)*")


def _shape_problem(manifest: dict) -> str | None:
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
    bad = next((k for k in lists["storage_keys"] if not _KEY.fullmatch(k)), None)
    if bad is not None:
        return f"storage key {bad!r} is not Lhotse's 'offset,bytes,...'"
    n = manifest.get("num_features")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return f"num_features is {n!r}, not a positive whole number"
    if manifest.get("chunks") != CHUNKS:
        return f"chunks is {manifest.get('chunks')!r}, not {CHUNKS!r}"
    return None


def load_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a store, checked for version and completeness (errors say how to rebuild)."""
    directory = Path(directory)
    path = directory / MANIFEST
    rebuild = (
        f"rebuild it with `python -m data_prep.features --data-dir <data dir> --out {directory} --store`"
    )
    missing = f"{path}: no manifest, so the feature store is missing or incomplete; {rebuild}"
    manifest = read_json_manifest(path, FeatureStoreError, missing, rebuild)
    if manifest.get("version") != STORE_VERSION:
        raise FeatureStoreError(
            f"{path}: not a version-{STORE_VERSION} feature store (found {manifest.get('version')!r}); {rebuild}"
        )
    if manifest.get("format") != STORE_FORMAT:
        raise FeatureStoreError(
            f"{path}: storage format {manifest.get('format')!r} is not {STORE_FORMAT!r}; {rebuild}"
        )
    problem = _shape_problem(manifest)
    if problem:
        raise FeatureStoreError(f"{path}: damaged manifest: {problem}; {rebuild}")
    return manifest


class FeatureStore:
    """Random access to a store's utterances: only the manifest is held, frames are read per call."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        manifest = load_manifest(self.directory)
        self.manifest = manifest
        self.chunks = self.directory / manifest["chunks"]
        self.num_features = int(manifest["num_features"])
        self.utt_ids: list[str] = manifest["utt_ids"]
        self.texts: list[str] = manifest["texts"]
        self.num_frames = np.asarray(manifest["num_frames"], dtype=np.int64)
        self._keys: list[str] = manifest["storage_keys"]
        self._checksums: list[int] | None = manifest.get("checksums")  # stores written before: none
        _lhotse()
        from lhotse.features.io import LilcomChunkyReader

        self._reader = LilcomChunkyReader(self.chunks)

    def __len__(self) -> int:
        return len(self.utt_ids)

    def read(self, index: int) -> torch.Tensor:
        """Float32 ``[frames, num_features]`` of utterance ``index``; FeatureStoreError names the file and
        utterance if the chunk file is missing, truncated or holds other frames than the manifest says."""
        utt_id = self.utt_ids[index]
        try:
            self._verify(index)
            array = self._reader.read(self._keys[index])
        except FileNotFoundError as err:
            raise FeatureStoreError(
                f"{self.chunks}: chunk file missing while reading utterance {utt_id}; rebuild the store"
            ) from err
        except (OSError, ValueError) as err:
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

    def _verify(self, index: int) -> None:
        """The utterance's compressed bytes against the manifest's CRC-32: flipped bytes that still
        decode would otherwise pass as features."""
        if self._checksums is None:
            return
        start, size = _extent(self._keys[index])
        with self.chunks.open("rb") as f:
            f.seek(start)
            data = f.read(size)
        if len(data) != size:
            raise FeatureStoreError(
                f"{self.chunks}: utterance {self.utt_ids[index]} ends past the end of the file (truncated): "
                "rebuild the store"
            )
        if zlib.crc32(data) != self._checksums[index]:
            raise FeatureStoreError(
                f"{self.chunks}: utterance {self.utt_ids[index]} does not match its checksum (the file is "
                "damaged or overwritten): rebuild the store"
            )

    def read_many(self, indices: Sequence[int]) -> list[torch.Tensor]:
        return [self.read(i) for i in indices]
