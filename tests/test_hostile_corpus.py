"""One corpus with every kind of broken input mixed into good data: the features stage and training
go on with the good part, the summary counts each kind and names examples, and the threshold stops it."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torchaudio

from data_prep.audio.audio_io import read_audio
from data_prep.corpora.kaldi_dir import read_data_dir
from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.features.extraction import FeatureConfig, build_feature_store
from data_prep.features.extraction import main as features_main
from data_prep.features.store import FeatureStore
from data_prep.text.vocab import CharVocab
from dsd_seq.cli import main as dsd_seq_main
from dsd_seq.training.metrics_log import read_metrics

# kind reported -> the utterance that has it (one each)
BAD = {
    "empty_audio": "bad-zero-bytes",
    "truncated_audio": "bad-truncated",
    "corrupt_audio": "bad-not-audio",
    "low_sample_rate": "bad-8khz",
    "nonfinite_audio": "bad-nan",
    "missing_audio": "bad-missing-file",
    "empty_transcript": "bad-empty-text",
    "transcript_longer_than_audio": "bad-long-text",
    "oov_transcript": "bad-unknown-chars",
    "duplicate_utt_id": "bad-duplicate",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    cfg = SynthSpeechConfig(num_train=16, num_dev=3, num_test=3, seed=5, shard_size=8, jobs=2)
    return generate_corpus(tmp_path_factory.mktemp("corpus"), cfg, progress=False)


@pytest.fixture(scope="module")
def hostile_dir(corpus, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    good = read_data_dir(corpus["train"])
    wave = read_audio(good[0].wav_path, 16000).numpy()
    (tmp / "zero.wav").write_bytes(b"")
    full = good[1].wav_path.read_bytes()
    (tmp / "truncated.wav").write_bytes(full[: len(full) // 2])
    (tmp / "not-audio.wav").write_text("this is a transcript, not audio\n")
    narrow = torchaudio.functional.resample(read_audio(good[2].wav_path, 16000), 16000, 8000)
    sf.write(str(tmp / "8khz.wav"), narrow.numpy(), 8000)
    wide = torchaudio.functional.resample(read_audio(good[3].wav_path, 16000), 16000, 22050)
    sf.write(str(tmp / "22khz.wav"), wide.numpy(), 22050)
    nan = wave.copy()
    nan[100] = np.nan
    sf.write(str(tmp / "nan.wav"), nan, 16000, subtype="FLOAT")
    lines = [(u.utt_id, u.wav_path, u.text) for u in good]
    lines += [
        ("bad-zero-bytes", tmp / "zero.wav", good[0].text),
        ("bad-truncated", tmp / "truncated.wav", good[1].text),
        ("bad-not-audio", tmp / "not-audio.wav", good[0].text),
        ("bad-8khz", tmp / "8khz.wav", good[2].text),
        ("ok-22khz", tmp / "22khz.wav", good[3].text),
        ("bad-nan", tmp / "nan.wav", good[0].text),
        ("bad-missing-file", tmp / "no-such-file.wav", good[0].text),
        ("bad-empty-text", good[0].wav_path, ""),
        ("bad-long-text", good[0].wav_path, "one two three " * 100),
        ("bad-unknown-chars", good[0].wav_path, "push the cup ½ ✓"),
        ("bad-duplicate", good[0].wav_path, good[0].text),
        ("bad-duplicate", good[1].wav_path, good[1].text),
    ]
    data = tmp / "data"
    data.mkdir()
    for name, column in (("wav.scp", 1), ("text", 2), ("utt2spk", None)):
        rows = [f"{line[0]} {line[column] if column else 'spk'}".rstrip() for line in lines]
        (data / name).write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    return data


def test_features_stage_keeps_the_good_part_and_counts_each_kind(hostile_dir, tmp_path, capsys):
    out = tmp_path / "train"
    assert (
        features_main(["--data-dir", str(hostile_dir), "--out", str(out), "--max-bad-fraction", "0.5"]) == 0
    )
    summary = capsys.readouterr().out
    for kind, utt in BAD.items():
        assert f"{kind}: 1 (e.g. {utt})" in summary, kind
    assert "resampled, kept: 1 (e.g. ok-22khz (22050 Hz))" in summary
    store = FeatureStore(out)
    assert len(store.utt_ids) == 17 and "ok-22khz" in store.utt_ids
    assert not any(u.startswith("bad-") for u in store.utt_ids)
    listed = json.loads(Path(f"{out}.problems.json").read_text())
    assert {kind: [p["utt_id"] for p in items] for kind, items in listed.items()} == {
        k: [u] for k, u in BAD.items()
    }


def test_the_threshold_turns_the_same_corpus_into_an_error(hostile_dir, tmp_path, capsys):
    out = tmp_path / "train"
    assert features_main(["--data-dir", str(hostile_dir), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "10 of 27 utterances unusable" in err and "max_bad_fraction 10.0%" in err
    assert "truncated_audio: 1 (e.g. bad-truncated)" in err
    assert not out.exists()


def test_training_runs_on_the_good_part_and_logs_the_counts(corpus, hostile_dir, tmp_path):
    caches = {}
    for split in ("dev", "test"):
        caches[split] = tmp_path / split
        build_feature_store(
            corpus[split], caches[split], FeatureConfig(), CharVocab.default(), progress=False
        )
    caches["train"] = tmp_path / "train"
    build_feature_store(hostile_dir, caches["train"], FeatureConfig(), CharVocab.default(), 0.5, False)
    config = tmp_path / "run.yaml"
    config.write_text(
        "task: models.speech.speech_task:build_task\n"
        "task_args:\n"
        "  model: deepspeech2\n"
        "  model_args: {conv_channels: [4], conv_kernels: [[5, 11]], conv_strides: [[2, 2]], rnn_layers: 1,"
        " rnn_hidden: 16}\n"
        "  batch_size: 8\n"
        "  max_bad_fraction: 0.5\n"
        "schedule: D1:2e-3\n"
        "train: {num_threads: 1, progress: false, tensorboard: false}\n"
    )
    exp = tmp_path / "exp"
    paths = [f"task_args.data.{split}={path}" for split, path in caches.items()]
    argv = ["train", "--config", str(config), "--exp-dir", str(exp), "--dense-only"]
    assert dsd_seq_main(argv + [a for p in paths for a in ("--set-str", p)]) == 0
    data = next(r for r in read_metrics(exp / "metrics.jsonl") if r["event"] == "data")
    assert data["problems"]["train"]["cache_problems"] == dict.fromkeys(BAD, 1)
    assert json.loads((exp / "results.json").read_text())["phases"][0]["metrics"]["test"]["wer"] >= 0
