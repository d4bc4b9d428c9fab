"""The flat module names of before the subpackages: each old name loads its new module (imports, ``python
-m``, a config's ``task:``, an old package's inference entry), a removed one fails naming its replacement,
and nothing in the repository itself still uses an old name."""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import data_prep  # noqa: F401  (installs the forwarding of data_prep's old names)
import models  # noqa: F401
from data_prep.renamed import DATA_PREP_RENAMED, RenamedModuleError
from dsd_seq.export.manifest_schema import check_inference_entry
from dsd_seq.training.task import build_task
from models.renamed import MODELS_RENAMED

ROOT = Path(__file__).resolve().parents[1]
RENAMED = {**DATA_PREP_RENAMED, **MODELS_RENAMED}
MOVED = {old: new for old, new in RENAMED.items() if isinstance(new, str)}


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_an_old_name_has_no_file_and_its_new_home_exists(old):
    assert not (ROOT / (old.replace(".", "/") + ".py")).exists(), f"{old} is still a file: drop its row"
    new = RENAMED[old] if isinstance(RENAMED[old], str) else RENAMED[old][1].rsplit(".", 1)[0]
    assert (ROOT / (new.replace(".", "/") + ".py")).is_file(), f"{old} -> {new}, which does not exist"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_name_imports_the_very_module_at_its_new_name(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_a_removed_module_fails_naming_what_replaced_it():
    with pytest.raises(
        RenamedModuleError,
        match=r"data_prep.stored_speech_dataset was removed; use "
        r"data_prep.batching.speech_dataset.SpeechDataset",
    ):
        importlib.import_module("data_prep.stored_speech_dataset")


def test_an_old_config_task_and_an_old_packages_inference_entry_still_work():
    with pytest.raises(ValueError, match="task_args.data must name a 'train'"):  # imported, then called
        build_task("models.speech_task:build_task", {"data": {}})
    assert check_inference_entry("models.speech_recognizer:from_package", "manifest.json")
    assert importlib.import_module("models.speech_recognizer").from_package


def test_python_dash_m_runs_an_old_corpus_name_and_the_feature_stage(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for module, usage in (
        ("data_prep.synth_speech", "python -m data_prep.corpora.synth_speech"),
        ("data_prep.features", "python -m data_prep.features"),
        ("data_prep.subword_units", "python -m data_prep.features.learn_units"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0 and done.stdout.startswith(f"usage: {usage}"), done.stderr


def test_nothing_in_the_repository_uses_an_old_name():
    old = re.compile(r"(?<![\w.])(" + "|".join(re.escape(name) for name in RENAMED) + r")(?![\w])")
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    kept = {"data_prep/renamed.py", "models/renamed.py", "tests/test_renamed_modules.py"}
    kept |= {"dsd_seq/export/manifest_schema.py"}  # accepts the inference entries of old packages
    offenders = []
    for name in listed.stdout.splitlines():
        if (
            name in kept
            or name.startswith("docs/examples/")
            or not name.endswith((".py", ".sh", ".md", ".yaml"))
        ):
            continue
        path = ROOT / name
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            offenders += [f"{name}:{number}: {m.group(1)}" for m in old.finditer(line)]
    assert not offenders, "old module names (see data_prep/renamed.py):\n" + "\n".join(offenders)
