"""What a model package's ``manifest.json`` may say, checked before anything in the package is used.

A package is a folder anyone can hand over and edit, so loading it trusts nothing it claims:

- **Its inference entry** names the code that builds the model. Only the entries of a closed registry
  are accepted, the project's own model families (``INFERENCE_ENTRIES``); anything else is refused by
  name before any import. Code you run yourself may add your own family with
  :func:`register_inference_entry`; a package cannot.
- **Its file names** stay inside the package: plain relative names, no ``..``, no absolute paths, no
  links out of the folder.
- **Its shape**: the keys, their types, and checksums of 64 hex digits.
- **Its sizes**: a model family builds its model through :func:`build_within_weights`, so settings that
  claim a larger model than the weights file holds are refused before the model is allocated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch import nn

#: The model families a package may name (``module:function`` building the model from the package).
INFERENCE_ENTRIES: set[str] = {
    "models.speech.speech_recognizer:from_package",
    "models.captioning.image_captioner:from_package",
    # packages exported before models/ had subpackages name the old modules (forwarded by models.renamed)
    "models.speech_recognizer:from_package",
    "models.image_captioner:from_package",
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """A manifest that does not say what a dsd-seq package says; the message names the key."""


def register_inference_entry(entry: str) -> None:
    """Accept packages of your own model family (``"mypackage.mymodel:from_package"``). Only code you
    run can call this: a package's manifest cannot extend the registry."""
    module, _, function = entry.partition(":")
    if not module or not function.isidentifier():
        raise ValueError(f"an inference entry is 'module:function', got {entry!r}")
    INFERENCE_ENTRIES.add(entry)


def check_inference_entry(entry: Any, where: str) -> str:
    """``entry`` when the registry holds it; a ManifestError naming it otherwise (nothing is imported)."""
    if not isinstance(entry, str) or entry not in INFERENCE_ENTRIES:
        raise ManifestError(
            f"{where}: 'inference' names {entry!r}, which is not one of dsd-seq's model families "
            f"({', '.join(sorted(INFERENCE_ENTRIES))}); it was not imported. A package of your own model "
            "family needs dsd_seq.export.register_inference_entry in your code first"
        )
    return entry


def check_file_name(folder: Path, name: Any, where: str) -> Path:
    """The path of package file ``name``: a plain relative name that stays inside ``folder``."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        raise ManifestError(f"{where}: file name {name!r} is not a plain relative name")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or name.startswith("~"):
        raise ManifestError(f"{where}: file name {name!r} leaves the package folder (absolute or '..')")
    path = folder / name
    resolved, root = path.resolve(), folder.resolve()
    if resolved != root and root not in resolved.parents:
        raise ManifestError(f"{where}: file {name!r} resolves outside the package folder (a link?)")
    return path


_KIND_NAMES = {dict: "an object", list: "a list", str: "a string"}


def _expect(value: Any, kind: type, where: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise ManifestError(f"{where}: {what} must be {_KIND_NAMES[kind]}, got {type(value).__name__}")
    return value


def validate_manifest(manifest: dict, folder: Path, where: str) -> None:
    """Raise ManifestError unless ``manifest`` has a package manifest's keys and types, a registered
    inference entry and file names inside ``folder``."""
    for key in ("inference", "settings", "weights", "files"):
        if key not in manifest:
            raise ManifestError(f"{where}: the key {key!r} is missing")
    check_inference_entry(manifest["inference"], where)
    _expect(manifest["settings"], dict, f"{where}: settings", "the model's settings")
    weights = _expect(manifest["weights"], dict, f"{where}: weights", "the weights entry")
    _expect(weights.get("file"), str, f"{where}: weights.file", "the weights file's name")
    files = _expect(manifest["files"], dict, f"{where}: files", "the file list")
    for name, digest in files.items():
        check_file_name(folder, name, f"{where}: files")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ManifestError(
                f"{where}: files[{name!r}] must be a SHA-256 of 64 hex digits, got {digest!r}"
            )
    if weights["file"] != "weights.pt" or weights["file"] not in files:
        raise ManifestError(
            f"{where}: weights.file must be 'weights.pt', among the checksummed files; got {weights['file']!r}"
        )
    if "provenance" in manifest:
        _expect(manifest["provenance"], dict, f"{where}: provenance", "the provenance")
    deployment = manifest.get("deployment", {})
    _expect(deployment, dict, f"{where}: deployment", "the deployment list")
    for fmt, entries in deployment.items():
        for i, entry in enumerate(_expect(entries, list, f"{where}: deployment.{fmt}", "a format's graphs")):
            entry = _expect(entry, dict, f"{where}: deployment.{fmt}[{i}]", "a graph entry")
            if entry.get("file") not in files:
                raise ManifestError(
                    f"{where}: deployment.{fmt}[{i}].file {entry.get('file')!r} is not among the checksummed files"
                )


def build_within_weights(build: Callable[[], nn.Module], weights: Mapping[str, torch.Tensor]) -> nn.Module:
    """``build()``, first on the meta device (nothing allocated) to count its parameters and buffers: a
    model the package's settings describe may not be larger than the weights it comes with."""
    with torch.device("meta"):
        probe = build()
    claimed = sum(t.numel() for t in [*probe.parameters(), *probe.buffers()])
    held = sum(t.numel() for t in weights.values() if isinstance(t, torch.Tensor))
    if claimed > held:
        raise ManifestError(
            f"the settings describe a model of {claimed:,} values, but the weights hold {held:,}; "
            "refused before building it"
        )
    return build()
