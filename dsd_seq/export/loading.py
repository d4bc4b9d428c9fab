"""``load_model(path)``: a model package (or, failing that, a training checkpoint) as a usable model.

The returned object is the model family's own (e.g. a speech recogniser with ``transcribe``, a
captioner with ``caption``), built by the ``module:function`` the manifest names: one of the project's
own model families (``dsd_seq.export.manifest_schema``), checked with the whole manifest and every file's
checksum before anything is imported or allocated.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from dsd_seq.export.package import PackageError, read_package
from dsd_seq.export.sparse_storage import SparseStorageError, expand_state
from dsd_seq.safe_io import load_checkpoint_dict


def load_model(path: str | Path, device: str = "cpu"):
    """Load a package folder made by ``dsd-seq export``; a checkpoint file is accepted too (its run
    config must still point at readable data, which a package never needs)."""
    path = Path(path)
    if path.is_dir():
        manifest, stored = read_package(path)
        spec = manifest["inference"]
        assets = {name: path / name for name in manifest["files"]}
        settings = manifest["settings"]
        try:
            weights = expand_state(stored["model"])
        except (SparseStorageError, KeyError, TypeError, AttributeError) as err:
            raise PackageError(f"{path}: its weights do not match their own description ({err})") from None
    elif path.is_file():
        from dsd_seq.export.exporter import inference_module  # imports the task module by name

        state = load_checkpoint_dict(path, needs=("config",))
        module_name, module = inference_module(state["config"]["task"])
        settings, assets = module.describe(state["config"]["task_args"], state["model"])
        spec, weights = f"{module_name}:from_package", state["model"]
    else:
        raise PackageError(f"{path}: no such model package or checkpoint")
    module_name, _, function = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as err:
        raise PackageError(f"{path}: its inference code {spec!r} cannot be imported ({err})") from None
    try:
        return factory(settings, weights, assets, device)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # (ManifestError: a too-large claim)
        raise PackageError(
            f"{path}: its settings do not build a model that fits its weights ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else err!r}); export the model again"
        ) from None
