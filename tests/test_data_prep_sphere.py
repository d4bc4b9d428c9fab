"""NIST SPHERE reading and conversion: uncompressed PCM both byte orders, damaged and shorten files."""

import numpy as np
import pytest
import soundfile as sf

from data_prep.audio.sphere import SphereError, read_header, read_sphere, sphere_to_wav, write_sphere


def _tone(n=1600):
    return (8000 * np.sin(np.arange(n) * 2 * np.pi * 440 / 16000)).astype(np.int16)


@pytest.mark.parametrize("big_endian", [False, True])
def test_uncompressed_sphere_converts_to_the_same_samples(tmp_path, big_endian):
    samples = _tone()
    write_sphere(tmp_path / "a.wv1", samples, 16000, big_endian=big_endian)
    header = read_header(tmp_path / "a.wv1")
    assert header["sample_count"] == 1600 and header["sample_byte_format"] == ("10" if big_endian else "01")
    wav = sphere_to_wav(tmp_path / "a.wv1", tmp_path / "out" / "a.wav")
    data, rate = sf.read(str(wav), dtype="int16")
    assert rate == 16000 and np.array_equal(data, samples)
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_truncated_and_foreign_files_are_refused_naming_the_file(tmp_path):
    write_sphere(tmp_path / "a.wv1", _tone(), 16000)
    (tmp_path / "cut.wv1").write_bytes((tmp_path / "a.wv1").read_bytes()[:2000])
    with pytest.raises(SphereError, match=r"cut.wv1: truncated: the header announces 1600 samples"):
        read_sphere(tmp_path / "cut.wv1")
    (tmp_path / "x.wv1").write_bytes(b"RIFF....WAVE")
    with pytest.raises(SphereError, match=r"x.wv1: not a NIST SPHERE file"):
        sphere_to_wav(tmp_path / "x.wv1", tmp_path / "x.wav")


def test_shorten_audio_without_sph2pipe_says_how_to_install_it(tmp_path, monkeypatch):
    write_sphere(tmp_path / "a.wv1", _tone(), 16000)
    raw = (tmp_path / "a.wv1").read_bytes()
    shortened = raw.replace(b"sample_coding -s3 pcm", b"sample_coding -s26 pcm,embedded-shorten-v2.00", 1)
    (tmp_path / "s.wv1").write_bytes(shortened[:1024].rstrip(b" ").ljust(1024, b" ") + raw[1024:])
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(SphereError, match=r"s.wv1: shorten-compressed SPHERE .*sph2pipe is not on PATH"):
        sphere_to_wav(tmp_path / "s.wv1", tmp_path / "s.wav")
    assert not (tmp_path / "s.wav").exists()
