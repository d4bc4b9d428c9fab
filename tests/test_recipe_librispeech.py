"""LibriSpeech preparation and egs/librispeech/run.sh on fixture archives in OpenSLR's real layout.

The fixture mirror is a local folder (``file://``) holding ``resources/<n>/<subset>.tar.gz`` archives of
FLAC files and ``.trans.txt`` transcripts made from the project's synthetic speech.
"""

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torchaudio.datasets.librispeech as torchaudio_librispeech

from data_prep.corpora import librispeech
from data_prep.corpora.archive import ArchiveError, download_with_checksum, sha256_of
from data_prep.corpora.kaldi_dir import read_data_dir
from tests.corpus_fixtures import synth_utterances, write_librispeech_archive

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "librispeech"
MINI = {"train-clean-5": "train", "dev-clean-2": "dev", "test-clean": "test"}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openslr")
    utterances = synth_utterances(folder / "synth", 16, 4, 4)
    archives = {
        subset: write_librispeech_archive(folder, subset, utterances[split]) for subset, split in MINI.items()
    }
    return folder, archives, utterances


def test_the_checksum_table_is_torchaudios():
    pinned = {
        url.rsplit("/", 1)[1].removesuffix(".tar.gz"): sha
        for url, sha in torchaudio_librispeech._CHECKSUMS.items()
    }
    ours = {
        subset: value
        for subset, (resource, algorithm, value) in librispeech.SUBSETS.items()
        if resource == 12
    }
    assert ours == pinned
    assert (
        librispeech.archive_url("train-clean-5")
        == "https://www.openslr.org/resources/31/train-clean-5.tar.gz"
    )


def test_download_checks_the_published_checksum_unless_one_is_given(mirror, tmp_path):
    folder, archives, _ = mirror
    with pytest.raises(ArchiveError, match="md5 .* expected 6d7ab67ac6a1d2c993d050e16d61080d"):
        librispeech.download("dev-clean-2", tmp_path, mirror=folder.as_uri(), progress=False)
    with pytest.raises(ArchiveError, match="sha256 .* expected 39fde525"):
        librispeech.download("test-clean", tmp_path, mirror=folder.as_uri(), progress=False)
    assert not list(tmp_path.iterdir())  # nothing unverified is left behind
    archive = archives["dev-clean-2"]
    got = librispeech.download("dev-clean-2", tmp_path, folder.as_uri(), sha256_of(archive), progress=False)
    assert got.read_bytes() == archive.read_bytes()
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    assert download_with_checksum(archive.as_uri(), tmp_path / "again.tar.gz", md5=md5).is_file()


def test_prepare_lists_every_flac_with_its_transcript(mirror, tmp_path):
    folder, archives, utterances = mirror
    librispeech.extract(archives["train-clean-5"], "train-clean-5", tmp_path / "corpus")
    data_dir = librispeech.prepare(tmp_path / "corpus", ["train-clean-5"], tmp_path / "train")
    utts = read_data_dir(data_dir)
    assert len(utts) == len(utterances["train"])
    assert sorted(u.text.lower() for u in utts) == sorted(u.text for u in utterances["train"])
    assert all(u.wav_path.suffix == ".flac" and u.wav_path.is_file() for u in utts)
    assert all(u.utt_id.startswith(u.speaker + "-") for u in utts)
    first = next((tmp_path / "corpus" / "LibriSpeech" / "train-clean-5").glob("*/*/*.flac"))
    first.unlink()
    with pytest.raises(
        librispeech.LibriSpeechError, match=f"{first.name} is missing; the extraction is incomplete"
    ):
        librispeech.prepare(tmp_path / "corpus", ["train-clean-5"], tmp_path / "train2")


def test_an_archive_escaping_its_folder_is_refused(tmp_path):
    bad = tmp_path / "dev-clean.tar.gz"
    (tmp_path / "evil.txt").write_text("x")
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(tmp_path / "evil.txt", arcname="../evil.txt")
    with pytest.raises(ArchiveError, match="contains '..'"):
        librispeech.extract(bad, "dev-clean", tmp_path / "corpus")
    assert not (tmp_path / "evil.txt.1").exists() and not list((tmp_path / "corpus").iterdir())


def _run(args, cwd):
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(RECIPE.parents[1])}
    return subprocess.run(["bash", str(RECIPE / "run.sh"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_mini_recipe_runs_end_to_end_on_the_fixture_mirror(mirror, tmp_path):
    folder, archives, _ = mirror
    common = ["--mini", "--config", str(RECIPE / "conf" / "tiny.yaml"), "--data", "data", "--exp", "exp",
              "--mirror", folder.as_uri(), "--units", "bpe", "--vocab-size", "30"]  # fmt: skip
    refused = _run([*common, "--stop-stage", "0"], tmp_path)
    assert refused.returncode != 0 and "differs" not in refused.stdout
    assert "expected 5df7d4e78065366204ca6845bb08f490" in refused.stderr  # the published md5 of train-clean-5
    sums = [arg for subset, path in archives.items() for arg in ("--sha256", f"{subset}={sha256_of(path)}")]
    done = _run([*common, *sums], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for split in ("train", "dev", "test"):  # on-disk stores read on demand, not caches loaded whole
        assert (tmp_path / "data" / "feats" / split / "manifest.json").is_file(), split
        manifest = json.loads((tmp_path / "data" / "feats" / split / "manifest.json").read_text())
        assert manifest["format"] == "lhotse_lilcom_chunky", split  # the compact writer
    table = json.loads((tmp_path / "exp" / "results.json").read_text())
    for figure in ("weight_distribution", "training_curves", "layer_sparsity"):  # the report stage's figures
        assert (tmp_path / "exp" / "figures" / f"{figure}.png").stat().st_size > 5000
    assert [(r["run"], r["label"]) for r in table["rows"]] == [
        ("DSD", "Dense"), ("DSD", "Sparse"), ("DSD", "Re-dense"), ("LLR", "Dense (LLR)"), ("LLR", "Dense (LLR)"),
    ]  # fmt: skip
    decode = tmp_path / "exp" / "dsd" / "decode_test"
    refs = (decode / "ref.txt").read_text().splitlines()
    assert len(refs) == 4 and all(line.split()[0].count("-") == 2 for line in refs)
    assert (decode / "wer.txt").read_text().startswith("%WER ")
    assert (decode / "cer.txt").read_text().startswith("%CER ")
    assert "%WER" in done.stdout
    # the test WER in results.json is the one the scorer computes from the written files
    rate = float((decode / "wer.txt").read_text().split()[1])
    assert table["rows"][2]["metrics"]["test"]["wer"] == pytest.approx(rate, abs=0.006)
    # the last stage exports the models and prints the command that transcribes three test files: it works
    printed = done.stdout.split("Try the trained model")[1].splitlines()[1]
    verb, model, demo = shlex.split(printed)[1:]
    assert verb == "transcribe" and (tmp_path / "exp" / "model" / "sparse" / "manifest.json").is_file()
    assert (
        json.loads((tmp_path / "exp" / "model" / "dsd" / "manifest.json").read_text())["provenance"]["phase"]
        == 3
    )
    used = subprocess.run([sys.executable, "-m", "dsd_seq.cli", verb, model, demo], env={**os.environ, "PYTHONPATH": str(RECIPE.parents[1])}, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert used.returncode == 0 and len(used.stdout.splitlines()) == 3, used.stderr
    assert "3 of 3 done, 0 failed" in used.stderr
    again = _run([*common, "--stop-stage", "2"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "extracted already" in again.stdout and "features done already" in again.stdout
    assert "bpe units done already" in again.stdout
    assert (tmp_path / "data" / "lang_bpe30" / "units.model").is_file()
