"""A tiny DeepSpeech 2 trained through `dsd-seq train` (dense, then 50% sparse), exported dense and
compressed, then used from a fresh process with no data folders: its transcripts of files in several
formats and sample rates equal what the evaluation path (feature store + SpeechTask.transcribe) decodes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from data_prep.audio.audio_io import read_audio_with_rate
from data_prep.corpora.kaldi_dir import read_data_dir
from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.features.extraction import FeatureConfig, build_feature_store, compute_features
from data_prep.text.vocab import CharVocab
from dsd_seq.cli import main
from dsd_seq.export import PackageError, load_model
from dsd_seq.export.package import MANIFEST
from dsd_seq.export.sparse_storage import expand_state
from dsd_seq.safe_io import load_safely
from dsd_seq.training.provenance import environment
from models.speech.speech_task import build_task

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_speech")
    data = root / "data"
    dirs = generate_corpus(
        data, SynthSpeechConfig(num_train=12, num_dev=3, num_test=4, seed=5, jobs=1), progress=False
    )
    for split, folder in dirs.items():
        build_feature_store(folder, data / split, FeatureConfig(), CharVocab.default(), progress=False)
    config = root / "conf.yaml"
    config.write_text(
        "task: models.speech.speech_task:build_task\n"
        f"task_args: {{data: {{train: '{data / 'train'}', dev: '{data / 'dev'}'}}, batch_size: 4,"
        " model_args: {conv_channels: [4], conv_kernels: [[5, 11]], conv_strides: [[2, 2]], rnn_layers: 1,"
        " rnn_hidden: 24}}\n"
        "schedule: D2:3e-3,S1@0.5:1e-3\n"
        "train: {num_threads: 1, tensorboard: false, progress: false, eval_splits: [dev]}\n"
    )
    exp = root / "exp"
    assert main(["train", "--config", str(config), "--exp-dir", str(exp)]) == 0
    assert main(["export", str(exp), "--phase", "1", "--out", str(root / "dense")]) == 0
    assert main(["export", str(exp), "--phase", "2", "--compressed", "--out", str(root / "sparse")]) == 0
    return root, dirs


def _inputs_in_formats(root: Path, test_dir: Path) -> Path:
    """The test utterances as FLAC, OGG/Vorbis, 22.05 kHz stereo WAV and 44.1 kHz WAV, in a Kaldi data dir."""
    out = root / "inputs"
    out.mkdir(exist_ok=True)
    lines, texts, spk = [], [], []
    for utt, (fmt, rate, channels) in zip(read_data_dir(test_dir), [("FLAC", 16000, 1), ("OGG", 16000, 1),
                                                                   ("WAV", 22050, 2), ("WAV", 44100, 1)], strict=False):  # fmt: skip
        wave, file_rate = sf.read(str(utt.wav_path), dtype="float32")
        wave = torchaudio.functional.resample(torch.from_numpy(wave), file_rate, rate).numpy()
        data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
        path = out / f"{utt.utt_id}.{fmt.lower()}"
        sf.write(str(path), data, rate, format=fmt)
        lines.append(f"{utt.utt_id} {path}")
        texts.append(f"{utt.utt_id} {utt.text}")
        spk.append(f"{utt.utt_id} {utt.speaker}")
    for name, rows in (("wav.scp", lines), ("text", texts), ("utt2spk", spk)):
        (out / name).write_text("\n".join(rows) + "\n")
    return out


def _evaluation_path(root: Path, inputs: Path, checkpoint: Path) -> dict[str, str]:
    build_feature_store(inputs, root / "inputs", FeatureConfig(), CharVocab.default(), progress=False)
    task = build_task(data={"train": str(root / "data" / "train"), "test": str(root / "inputs")},
                      model_args={"conv_channels": [4], "conv_kernels": [[5, 11]], "conv_strides": [[2, 2]],
                                  "rnn_layers": 1, "rnn_hidden": 24})  # fmt: skip
    task.model.load_state_dict(load_safely(checkpoint)["model"])
    task.model.eval()
    with torch.no_grad():
        ids, _, hyps = task.transcribe("test", torch.device("cpu"))
    return dict(zip(ids, hyps, strict=True))


def test_compressed_sparse_export_restores_the_exact_weights_and_is_smaller(trained):
    root, _ = trained
    state = load_safely(root / "exp" / "checkpoints" / "phase2-end.pt")["model"]
    stored = load_safely(root / "sparse" / "weights.pt")["model"]
    restored = expand_state(stored)
    assert restored.keys() == state.keys()
    for name, tensor in state.items():
        assert restored[name].dtype == tensor.dtype and torch.equal(restored[name], tensor), name
    dense, sparse = (
        (root / "dense" / "weights.pt").stat().st_size,
        (root / "sparse" / "weights.pt").stat().st_size,
    )
    assert sparse < 0.8 * dense  # 50% of the prunable weights gone: their values and more leave the file


def test_fresh_process_without_data_transcribes_files_as_the_evaluation_path_decodes(trained, tmp_path):
    root, dirs = trained
    inputs = _inputs_in_formats(root, dirs["test"])
    expected = _evaluation_path(root, inputs, root / "exp" / "checkpoints" / "phase2-end.pt")
    assert any(expected.values()), "the tiny model should emit some characters"
    # copy the package and inputs away, then hide the training data and the run: the package alone must do
    package, audio = (
        shutil.copytree(root / "sparse", tmp_path / "model"),
        shutil.copytree(inputs, tmp_path / "audio"),
    )
    (tmp_path / "audio" / "wav.scp").write_text(
        "".join(
            f"{line.split()[0]} {audio / Path(line.split()[1]).name}\n"
            for line in (inputs / "wav.scp").read_text().splitlines()
        )  # fmt: skip
    )
    hidden = root.with_name(root.name + "-hidden")
    root.rename(hidden)
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        run = subprocess.run([sys.executable, "-m", "dsd_seq.cli", "transcribe", str(package), str(audio / "wav.scp")],
                             capture_output=True, text=True, cwd=tmp_path, env=env)  # fmt: skip
    finally:
        hidden.rename(root)
    assert run.returncode == 0, run.stderr
    got = dict((line.split(" ", 1) + [""])[:2] for line in run.stdout.splitlines())
    assert got == expected
    assert "4 of 4 done, 0 failed" in run.stderr


def test_bad_inputs_are_named_and_counted_and_the_good_ones_still_transcribed(trained, tmp_path, capsys):
    root, dirs = trained
    good = read_data_dir(dirs["test"])[0].wav_path
    shutil.copy(good, tmp_path / "good.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notaudio.wav").write_text("hello")
    sf.write(str(tmp_path / "silent.wav"), np.zeros(16000, dtype=np.float32), 16000)
    sf.write(str(tmp_path / "short.wav"), np.full(100, 0.1, dtype=np.float32), 16000)
    sf.write(str(tmp_path / "narrow.wav"), np.full(8000, 0.1, dtype=np.float32), 8000)
    huge = np.full(16000, 3e38, dtype=np.float32) * np.sign(np.sin(np.arange(16000)))
    sf.write(str(tmp_path / "huge.wav"), huge.astype(np.float32), 16000, subtype="FLOAT")
    shutil.copy(good, tmp_path / "with space.wav")
    capsys.readouterr()
    assert main(["transcribe", str(root / "dense"), str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == ["good"]
    for name, why in (("empty", "0 bytes"), ("notaudio", "unreadable"), ("silent", "silent"),
                      ("short", "shorter than one"), ("narrow", "below the features' 16000 Hz"),
                      ("huge", "not finite"), ("with space", "holds whitespace")):  # fmt: skip
        assert f"{tmp_path / name}.wav" in err and why in err, (name, err)
    assert "1 of 8 done, 7 failed" in err
    # JSON lines carry any name, so the same file is transcribed there
    assert main(["transcribe", str(root / "dense"), str(tmp_path / "with space.wav"), "--jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "with space"


def test_a_checkpoint_is_accepted_and_a_newer_or_damaged_package_refused(trained, tmp_path):
    root, dirs = trained
    wave_path = read_data_dir(dirs["test"])[0].wav_path
    from_checkpoint = load_model(root / "exp" / "checkpoints" / "phase1-end.pt")
    assert from_checkpoint.transcribe([wave_path]) == load_model(root / "dense").transcribe([wave_path])
    wave, _ = sf.read(str(wave_path), dtype="float32")
    assert load_model(root / "dense").transcribe([wave]) == from_checkpoint.transcribe([wave_path])
    newer = shutil.copytree(root / "dense", tmp_path / "newer")
    text = (newer / MANIFEST).read_text().replace('"format_version": 1', '"format_version": 99')
    (newer / MANIFEST).write_text(text)
    with pytest.raises(PackageError, match="newer than this dsd-seq reads"):
        load_model(newer)
    damaged = shutil.copytree(root / "dense", tmp_path / "damaged")
    with (damaged / "weights.pt").open("r+b") as f:
        f.seek(-10, 2)
        f.write(b"0123456789")
    with pytest.raises(PackageError, match="checksum mismatch"):
        load_model(damaged)


def test_chunk_seconds_cuts_a_long_file_into_pieces_decoded_alone(trained, tmp_path, capsys):
    root, dirs = trained
    waves = [sf.read(str(u.wav_path), dtype="float32")[0] for u in read_data_dir(dirs["test"])[:3]]
    long = np.concatenate(waves)
    sf.write(str(tmp_path / "long.wav"), long, 16000)
    recognizer = load_model(root / "dense")
    chunk = 16000  # 1 s pieces, each normalised and decoded as an utterance of its own
    pieces = [
        long[s : s + chunk]
        for s in range(0, len(long), chunk)
        if s == 0 or len(long) - s >= recognizer.features.frame_length_samples
    ]
    expected = " ".join(t for t in recognizer.transcribe(pieces) if t)
    assert expected != recognizer.transcribe([long])[0]  # the setting changes what is decoded
    capsys.readouterr()
    assert main(["transcribe", str(root / "dense"), str(tmp_path / "long.wav"), "--chunk-seconds", "1"]) == 0
    assert capsys.readouterr().out == f"long {expected}".rstrip() + "\n"
    assert (
        main(["transcribe", str(root / "dense"), str(tmp_path / "long.wav"), "--chunk-seconds", "0.001"]) != 0
    )
    assert "chunk seconds must be at least one feature frame" in capsys.readouterr().err


def test_a_file_that_runs_out_of_memory_is_named_and_skipped(trained, tmp_path, capsys, monkeypatch):
    import dsd_seq.export.commands as commands

    root, dirs = trained
    utts = read_data_dir(dirs["test"])[:2]
    for utt in utts:
        shutil.copy(utt.wav_path, tmp_path / f"{utt.utt_id}.wav")
    wave = sf.read(str(utts[0].wav_path), dtype="float32")[0]
    sf.write(str(tmp_path / "huge.wav"), np.concatenate([wave, wave[::-1], wave]), 16000)
    greedy = load_model(root / "dense").transcribe([u.wav_path for u in utts])
    bad_frames = {_features_of(root, tmp_path / "huge.wav").shape[0]}  # how the patched model knows it
    assert all(_features_of(root, u.wav_path).shape[0] not in bad_frames for u in utts)

    def loader(path, device):
        recognizer = load_model(path, device)
        forward = recognizer.model.forward

        def failing_forward(features, lengths):  # a batch holding the huge file does not fit
            if any(int(n) in bad_frames for n in lengths):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
            return forward(features, lengths)

        recognizer.model.forward = failing_forward
        return recognizer

    monkeypatch.setattr(commands, "load_model", loader)
    capsys.readouterr()
    assert main(["transcribe", str(root / "dense"), str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    got = dict((line.split(" ", 1) + [""])[:2] for line in out.splitlines())
    assert got == {u.utt_id: t for u, t in zip(utts, greedy, strict=True)}
    assert f"{tmp_path / 'huge.wav'}: decoding ran out of memory" in err
    assert "--chunk-seconds" in err and "2 of 3 done, 1 failed" in err


def _features_of(root: Path, wav: Path) -> torch.Tensor:
    recognizer = load_model(root / "dense")
    wave, _ = read_audio_with_rate(wav, recognizer.sample_rate, allow_upsampling=False)
    return compute_features(wave, recognizer.features)


def test_the_manifest_names_the_code_that_trained_the_phase_and_the_code_that_exported_it(trained):
    root, _ = trained
    provenance = json.loads((root / "dense" / "manifest.json").read_text())["provenance"]
    rows = json.loads((root / "exp" / "results.json").read_text())["phases"]
    assert provenance["trained_with"] == rows[provenance["phase"] - 1]["environment"]
    assert set(provenance["trained_with"]["versions"]) == {"dsd_seq", "torch", "python"}
    assert provenance["git_commit"] == environment()["git_commit"]
