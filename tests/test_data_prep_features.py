import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from data_prep.audio.audio_io import read_audio
from data_prep.corpora.kaldi_dir import Utterance, read_data_dir, write_data_dir
from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.features.extraction import (
    DataQualityError,
    FeatureConfig,
    build_feature_store,
    compute_features,
    main,
)
from data_prep.features.store import FeatureStore
from data_prep.text.vocab import CharVocab

NUM_GOOD = 12


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    cfg = SynthSpeechConfig(num_train=NUM_GOOD, num_dev=1, num_test=1, seed=1, shard_size=6, jobs=2)
    return generate_corpus(out, cfg, progress=False)["train"]


@pytest.fixture(scope="module")
def mixed_dir(corpus: Path, tmp_path_factory) -> Path:
    """The 12 good utterances plus one of each problem: corrupt, missing audio, empty and OOV transcripts."""
    tmp = tmp_path_factory.mktemp("mixed")
    good = read_data_dir(corpus)
    corrupt = tmp / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    bad = [
        Utterance("bad-corrupt", corrupt, "push the cup", "bad"),
        Utterance("bad-missing", tmp / "missing.wav", "pull the box", "bad"),
        Utterance("bad-empty-text", good[0].wav_path, "", "bad"),
        Utterance("bad-oov", good[1].wav_path, "push the cup ½", "bad"),
    ]
    return write_data_dir(tmp / "data", good + bad)


@pytest.mark.parametrize("kind", ["fbank", "logmel"])
def test_features_have_frames_by_bins_and_are_finite(corpus: Path, kind: str):
    wave = read_audio(read_data_dir(corpus)[0].wav_path, 16000)
    cfg = FeatureConfig(kind=kind, num_bins=40)
    feats = compute_features(wave, cfg)
    assert feats.dtype == torch.float32 and feats.shape[1] == 40
    assert abs(feats.shape[0] - wave.numel() / 160) <= 3
    assert torch.isfinite(feats).all()
    assert feats.mean(0).abs().max() < 1e-3 and (feats.std(0, unbiased=False) - 1).abs().max() < 1e-2
    raw = compute_features(wave, FeatureConfig(kind=kind, num_bins=23, normalize="none"))
    assert raw.shape == (feats.shape[0], 23) and torch.isfinite(raw).all()
    assert raw.mean(0).abs().max() > 1e-2


def test_features_reject_audio_shorter_than_a_frame():
    with pytest.raises(ValueError, match="shorter than one 25.0 ms frame"):
        compute_features(torch.zeros(100), FeatureConfig())


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("kind", "mfcc", "FeatureConfig.kind: 'mfcc' is not one of fbank, logmel"),
        ("normalize", "global", "FeatureConfig.normalize: 'global' is not one of utterance, none"),
        ("num_bins", 0, "FeatureConfig.num_bins"),
        ("frame_shift_ms", -1.0, "frame_shift_ms"),
    ],
)
def test_feature_config_names_bad_key_and_accepted_values(key, value, message):
    with pytest.raises(ValueError, match=message):
        FeatureConfig(**{key: value})


def test_store_keeps_good_utterances_and_counts_bad_ones_by_kind(mixed_dir: Path, tmp_path: Path):
    out = tmp_path / "feats"
    vocab = CharVocab.default()
    report = build_feature_store(mixed_dir, out, FeatureConfig(), vocab, max_bad_fraction=0.5, progress=False)
    assert report.num_utterances == NUM_GOOD + 4 and report.num_kept == NUM_GOOD
    assert {kind: [u for u, _ in items] for kind, items in report.problems.items()} == {
        "corrupt_audio": ["bad-corrupt"],
        "missing_audio": ["bad-missing"],
        "empty_transcript": ["bad-empty-text"],
        "oov_transcript": ["bad-oov"],
    }
    assert "'½'" in report.problems["oov_transcript"][0][1]
    assert "oov_transcript: 1 (e.g. bad-oov)" in report.summary()

    store = FeatureStore(out)
    good = read_data_dir(mixed_dir)
    good = [u for u in good if not u.utt_id.startswith("bad-")]
    assert store.manifest["version"] == 1
    assert store.utt_ids == [u.utt_id for u in good]
    assert store.texts == [u.text for u in good]
    assert CharVocab.from_dict(store.manifest["vocab"]) == vocab
    assert FeatureConfig.from_dict(store.manifest["feature_config"]) == FeatureConfig()
    assert store.manifest["problems"]["corrupt_audio"] == ["bad-corrupt"]
    for i, utt in enumerate(good):
        feats = store.read(i)
        assert feats.shape[1] == 40 and torch.isfinite(feats).all()
        assert torch.equal(feats, compute_features(read_audio(utt.wav_path, 16000), FeatureConfig()))
    problems = json.loads(Path(f"{out}.problems.json").read_text())
    assert problems["missing_audio"][0]["utt_id"] == "bad-missing"
    assert "missing.wav: file not found" in problems["missing_audio"][0]["message"]


def test_store_is_plain_data_its_manifest_json_its_features_numpy(mixed_dir: Path, tmp_path: Path):
    out = tmp_path / "feats"
    build_feature_store(
        mixed_dir, out, FeatureConfig(kind="logmel"), CharVocab.default(), 0.5, progress=False
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["feature_config"]["kind"] == "logmel" and manifest["format"] == "lhotse_numpy_files"
    first = np.load(out / manifest["chunks"] / manifest["storage_keys"][0], allow_pickle=False)
    assert first.dtype == np.float32 and torch.equal(torch.from_numpy(first), FeatureStore(out).read(0))
    assert not list(tmp_path.glob(".*tmp*"))


def test_too_many_bad_utterances_raise_with_a_summary_and_no_store(mixed_dir: Path, tmp_path: Path):
    out = tmp_path / "feats"
    with pytest.raises(DataQualityError) as info:
        build_feature_store(mixed_dir, out, FeatureConfig(), CharVocab.default(), progress=False)
    message = str(info.value)
    assert str(mixed_dir) in message
    assert "4 of 16 utterances unusable" in message
    for kind in ("corrupt_audio", "missing_audio", "empty_transcript", "oov_transcript"):
        assert f"{kind}: 1" in message
    assert "--max-bad-fraction" in message
    assert not out.exists()
    assert Path(f"{out}.problems.json").exists()


def test_cli_builds_a_store_and_prints_the_summary(corpus: Path, tmp_path: Path, capsys):
    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    out = tmp_path / "cli"
    assert main(["--data-dir", str(data), "--out", str(out), "--kind", "logmel", "--num-bins", "20"]) == 0
    assert f"kept {NUM_GOOD} of {NUM_GOOD} utterances" in capsys.readouterr().out
    assert FeatureStore(out).read(0).shape[1] == 20


def test_nan_audio_is_counted_not_fatal(corpus: Path, tmp_path: Path):
    nan_wav = tmp_path / "nan.wav"
    data = np.zeros(8000, dtype=np.float32)
    data[10] = np.inf
    sf.write(str(nan_wav), data, 16000, subtype="FLOAT")
    utts = read_data_dir(corpus) + [Utterance("bad-nan", nan_wav, "push", "bad")]
    data_dir = write_data_dir(tmp_path / "data", utts)
    report = build_feature_store(data_dir, tmp_path / "f", FeatureConfig(), CharVocab.default(), 0.1, False)
    assert [u for u, _ in report.problems["nonfinite_audio"]] == ["bad-nan"]


def test_empty_data_dir_is_an_error_not_an_empty_store(tmp_path: Path):
    data_dir = write_data_dir(tmp_path / "data", [])
    with pytest.raises(DataQualityError, match="lists no utterances; re-run the stage"):
        build_feature_store(data_dir, tmp_path / "f", FeatureConfig(), CharVocab.default(), progress=False)
    assert not (tmp_path / "f").exists()
