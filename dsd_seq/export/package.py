"""The model package on disk: ``manifest.json``, ``weights.pt`` and the model's assets, with checksums.

A folder rather than one file so that a person can read the manifest (what was trained, on what, how
well) without Python, and assets such as a SentencePiece model stay usable by other tools. The manifest
lists every file with its SHA-256; loading checks them before reading any weights.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import torch

from dsd_seq.export.manifest_schema import ManifestError, validate_manifest
from dsd_seq.safe_io import CheckpointError, load_safely, read_json_manifest, save_checkpoint, write_atomic

FORMAT_NAME = "dsd-seq-model"
#: raised when the manifest's meaning changes; a package of a newer version is refused, not misread
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.pt"


class PackageError(ValueError):
    """A model package that is missing, damaged or of a newer format."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def serialized_bytes(obj: object) -> int:
    """Size of ``obj`` as ``torch.save`` writes it (the dense file's size, for the export summary)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer().nbytes


def write_package(out: Path, manifest: dict, weights: dict, assets: dict[str, Path | bytes]) -> Path:
    """Write the package into ``out`` (created; files of an earlier export there are replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(weights, out / WEIGHTS)
    for name, source in assets.items():
        if isinstance(source, bytes):
            write_atomic(out / name, source)
        else:
            if not Path(source).is_file():
                raise PackageError(f"{source}: the model needs this file ({name}) and it is missing")
            shutil.copyfile(source, out / name)
    files = {name: sha256(out / name) for name in [WEIGHTS, *assets]}
    manifest = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **manifest, "files": files}
    write_atomic(out / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    return out / MANIFEST


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    missing = (
        f"{folder}: no {MANIFEST}; not a model package (make one with `dsd-seq export RUN_DIR --out DIR`)"
    )
    manifest = read_json_manifest(path, PackageError, missing, "export the model again")
    if manifest.get("format") != FORMAT_NAME:
        raise PackageError(f"{path}: not a dsd-seq model manifest (format {manifest.get('format')!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise PackageError(
            f"{path}: model package format version {version!r}, newer than this dsd-seq reads "
            f"({FORMAT_VERSION}); upgrade dsd-seq (pip install -U dsd-seq) to load it"
        )
    try:  # before any file is read or any code imported: see manifest_schema
        validate_manifest(manifest, folder, str(path))
    except ManifestError as err:
        raise PackageError(f"{err}; export the model again") from None
    return manifest


def read_package(folder: Path) -> tuple[dict, dict]:
    """(manifest, stored weights) after checking every file's checksum."""
    manifest = read_manifest(folder)
    for name, expected in manifest["files"].items():
        path = folder / name  # a plain name inside the folder: validate_manifest checked it
        if not path.is_file():
            raise PackageError(f"{path}: listed in the manifest but missing; copy the whole package folder")
        if sha256(path) != expected:
            raise PackageError(f"{path}: checksum mismatch (damaged or edited); export or copy it again")
    try:
        weights = load_safely(folder / WEIGHTS, what="model weights")
    except CheckpointError as err:
        raise PackageError(str(err)) from None
    return manifest, weights
