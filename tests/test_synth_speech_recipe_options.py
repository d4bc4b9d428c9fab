"""The two synthetic speech recipes share their stages (egs/common/synth_speech_recipe.sh): each keeps its
own header as --help, its corpus options, and refuses what its corpus does not take, before any work."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_recipe(recipe: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "egs" / recipe / "run.sh"), *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("recipe", "first_line", "usage"),
    [
        ("synth_speech", "built-in synthetic speech corpus", "conf/train.yaml"),
        ("synth_speech_open", "open-vocabulary synthetic speech corpus", "[--vocabulary N]"),
    ],
)
def test_help_prints_the_recipes_own_header(recipe, first_line, usage):
    result = run_recipe(recipe, "--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert first_line in lines[0] and lines[0].startswith("# DSD on the")
    assert f"Usage: egs/{recipe}/run.sh" in result.stdout and usage in result.stdout
    assert all(line.startswith("#") for line in lines)  # the header comment only, no code


def test_vocabulary_is_refused_where_the_corpus_has_none():
    result = run_recipe("synth_speech", "--vocabulary", "3")
    assert result.returncode == 2
    assert "takes no --vocabulary" in result.stderr


@pytest.mark.parametrize("recipe", ["synth_speech", "synth_speech_open"])
def test_unknown_options_and_missing_values_stop_the_recipe(recipe):
    unknown = run_recipe(recipe, "--frobnicate", "1")
    assert unknown.returncode == 2 and "unknown option '--frobnicate'" in unknown.stderr
    missing = run_recipe(recipe, "--stage")
    assert missing.returncode == 2 and "--stage needs a value" in missing.stderr
