from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from data_prep.audio.audio_io import AudioError, read_audio, write_audio
from data_prep.corpora.espeak import EspeakSynthesizer


def test_write_read_round_trip_and_resampling(tmp_path: Path):
    wave, rate = EspeakSynthesizer().synthesize("push the red cup")
    path = tmp_path / "a.wav"
    write_audio(path, wave, rate)
    assert sf.info(str(path)).subtype == "PCM_16"
    same = read_audio(path, rate)
    assert same.dtype == torch.float32 and same.shape == (wave.size,)
    assert torch.allclose(same, torch.from_numpy(wave), atol=1 / 16384)
    resampled = read_audio(path, 16000)
    assert abs(resampled.numel() - wave.size * 16000 / rate) <= 1


def test_stereo_is_averaged_to_mono(tmp_path: Path):
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([np.full(800, 0.5), np.full(800, -0.25)], axis=1), 8000)
    wave = read_audio(path, 8000)
    assert wave.shape == (800,)
    assert torch.allclose(wave, torch.full((800,), 0.125), atol=1e-3)


def test_missing_file(tmp_path: Path):
    with pytest.raises(AudioError, match=r"nowhere\.wav: file not found") as info:
        read_audio(tmp_path / "nowhere.wav", 16000)
    assert info.value.kind == "missing_audio"


def test_corrupt_file(tmp_path: Path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match=r"corrupt\.wav: unreadable or corrupt audio") as info:
        read_audio(path, 16000)
    assert info.value.kind == "corrupt_audio"


def test_empty_file(tmp_path: Path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"empty\.wav: audio has zero samples") as info:
        read_audio(path, 16000)
    assert info.value.kind == "empty_audio"


def test_nan_samples(tmp_path: Path):
    path = tmp_path / "nan.wav"
    data = np.zeros(1600, dtype=np.float32)
    data[100] = np.nan
    sf.write(str(path), data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: audio holds NaN or infinite samples") as info:
        read_audio(path, 16000)
    assert info.value.kind == "nonfinite_audio"
