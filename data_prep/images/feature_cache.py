"""The on-disk convention of the image feature caches: how they are written, read and checked. (Speech
features live in a store instead, :mod:`data_prep.features.store`: read on demand, not loaded whole.)

A cache is a dict of tensors and Python primitives with a header: ``kind`` (what it holds) and ``version``
(of that layout). It is written with :func:`dsd_seq.safe_io.save_atomic` (a crash never leaves half a cache,
and a plain ``torch.load(weights_only=True)`` still reads it) and read with :func:`dsd_seq.safe_io.load_safely`
(no code runs on load; a checksummed envelope is verified if there is one). Every failure is a
:class:`FeatureCacheError` naming the file and the command that rebuilds it: a cache is derived data, so
rebuilding is always the fix.

Caches written before this convention carry half a header (image caches ``kind`` alone); a
:class:`CacheFormat` lists that half as its ``legacy_header`` so they still load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dsd_seq.safe_io import CheckpointError, load_safely, save_atomic

HEADER_KEYS = ("kind", "version")


@dataclass(frozen=True)
class CacheFormat:
    """One kind of feature cache: its header, its name in messages and the command that rebuilds it."""

    kind: str
    version: int
    what: str  # e.g. "feature cache", as messages name it
    rebuild: str  # the command that makes the cache; "{path}" stands for the cache file
    legacy_header: dict = field(
        default_factory=dict
    )  # the header of files written before ``kind``+``version``

    @property
    def header(self) -> dict:
        return {"kind": self.kind, "version": self.version}

    def rebuild_command(self, path: str | os.PathLike) -> str:
        return self.rebuild.replace("{path}", str(path))

    def save(self, contents: dict, path: str | os.PathLike) -> dict:
        """Write ``contents`` behind this format's header atomically to ``path``; returns what was written."""
        cache = {**self.header, **contents}
        save_atomic(cache, path)
        return cache

    def load(self, path: str | os.PathLike) -> dict:
        """The cache at ``path``, checked to be of this kind and version."""
        path = Path(path)
        if not path.is_file():
            raise FeatureCacheError(
                f"{path}: {self.what} not found; build it with `{self.rebuild_command(path)}`"
            )
        try:
            cache = load_safely(path, what=self.what)
        except CheckpointError as err:
            # torch's own advice (weights_only=False) and a checkpoint's (resume from an earlier one) are
            # not the fix for derived data: only the cause is kept, and the fix is to rebuild it.
            cause = err.__cause__
            reason = f"{type(cause).__name__}: {_first_line(cause)}" if cause else str(err).split("; ")[0]
            raise FeatureCacheError(
                f"{path}: unreadable {self.what} ({reason}); delete it and rebuild it with "
                f"`{self.rebuild_command(path)}`"
            ) from err
        found = {key: cache[key] for key in HEADER_KEYS if key in cache} if isinstance(cache, dict) else None
        if found != self.header and (not self.legacy_header or found != self.legacy_header):
            raise FeatureCacheError(
                f"{path}: its header {found if found is not None else type(cache).__name__} is not that of a "
                f"version-{self.version} {self.what} (kind {self.kind!r}); delete it and rebuild it with "
                f"`{self.rebuild_command(path)}`"
            )
        return cache


class FeatureCacheError(ValueError):
    """A feature cache that is missing, unreadable, or of another kind or version."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else ""
