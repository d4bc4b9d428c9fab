"""The flat module names of before the subpackages, forwarded to their new homes.

Recipes, configs and exported model packages written before name modules such as
``data_prep.synth_speech`` or ``models.speech_task:build_task``; importing (or ``python -m``) such a name
loads the module at its new path. A name whose module is gone fails naming what replaced it.
``data_prep.audio`` and ``data_prep.features`` are package names now: ``python -m data_prep.features``
runs the feature stage (its ``__main__``); their old modules are ``audio.audio_io`` and
``features.extraction``. Nothing in this repository uses the old names, and every new name exists
(``tests/test_renamed_modules.py``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old name -> new name, or (None, what to use instead) for a module that no longer exists
DATA_PREP_RENAMED: dict[str, str | tuple[None, str]] = {
    "data_prep.resampling": "data_prep.audio.resampling",
    "data_prep.speed_perturb": "data_prep.audio.speed_perturb",
    "data_prep.sphere": "data_prep.audio.sphere",
    "data_prep.vocab": "data_prep.text.vocab",
    "data_prep.subword_units": "data_prep.features.learn_units",  # its command (the units: text.subword_units)
    "data_prep.ngram_lm": "data_prep.text.ngram_lm",
    "data_prep.synth_speech": "data_prep.corpora.synth_speech",
    "data_prep.synth_speech_open": "data_prep.corpora.synth_speech_open",
    "data_prep.espeak": "data_prep.corpora.espeak",
    "data_prep.librispeech": "data_prep.corpora.librispeech",
    "data_prep.wsj": "data_prep.corpora.wsj",
    "data_prep.archive": "data_prep.corpora.archive",
    "data_prep.exit_status": "data_prep.corpora.exit_status",
    "data_prep.kaldi_dir": "data_prep.corpora.kaldi_dir",
    "data_prep.synth_captions": "data_prep.corpora.synth_captions",
    "data_prep.flickr": "data_prep.corpora.flickr",
    "data_prep.karpathy": "data_prep.corpora.karpathy",
    "data_prep.feature_store": "data_prep.features.store",
    "data_prep.onthefly_features": "data_prep.features.onthefly",
    "data_prep.feature_cache": "data_prep.images.feature_cache",
    "data_prep.speech_dataset": "data_prep.batching.speech_dataset",
    "data_prep.stored_speech_dataset": (None, "data_prep.batching.speech_dataset.SpeechDataset"),
    "data_prep.batch_sampler": "data_prep.batching.batch_sampler",
    "data_prep.bucketing": "data_prep.batching.bucketing",
    "data_prep.image_features": "data_prep.images.image_features",
    "data_prep.small_cnn_encoder": "data_prep.images.small_cnn_encoder",
    "data_prep.torchvision_encoders": "data_prep.images.torchvision_encoders",
}


class RenamedModuleError(ImportError):
    """An old module name whose module is gone; the message names what replaced it."""


class _RenamedFinder(importlib.abc.MetaPathFinder):
    """Finds an old name as the module at its new name. It answers for the old names only, and before the
    other finders: an editable install's finder would otherwise look for the old file in its checkout."""

    def __init__(self, renamed: dict[str, str | tuple[None, str]]) -> None:
        self.renamed = renamed

    def find_spec(self, fullname, path=None, target=None):
        new = self.renamed.get(fullname)
        if new is None:
            return None
        if isinstance(new, tuple):
            raise RenamedModuleError(f"{fullname} was removed; use {new[1]}", name=fullname)
        spec = importlib.util.find_spec(new)
        if spec is None:  # pragma: no cover - tests/test_renamed_modules.py checks every new name
            return None
        # The module object of the new name, under the old one too (one module, not a copy).
        return importlib.util.spec_from_loader(fullname, _Alias(new, spec), origin=spec.origin)


class _Alias(importlib.abc.Loader):
    """Loads an old name as the already imported module of its new name."""

    def __init__(self, new: str, spec) -> None:
        self.new, self.spec = new, spec

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module) -> None:
        pass

    def get_code(self, fullname):
        """``python -m <old name>`` runs the new module's code (runpy asks for it)."""
        return self.spec.loader.get_code(self.new)


def install_renamed(package: str, renamed: dict[str, str | tuple[None, str]]) -> None:
    """Let ``package``'s old module names resolve through ``renamed`` (once per package)."""
    if not any(getattr(f, "package", None) == package for f in sys.meta_path):
        finder = _RenamedFinder(renamed)
        finder.package = package
        sys.meta_path.insert(0, finder)
