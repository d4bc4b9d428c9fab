"""Resampling keeps its memory bounded whatever the file's rate: a WAV header saying 22,051 Hz or
1,000,003 Hz is resampled through a close fraction with a small kernel; a rate no fraction fits is a
counted skip naming the file."""

import json
import math
import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torchaudio.functional.functional import _get_sinc_resample_kernel

from data_prep.audio.audio_io import AudioError, read_audio_with_rate
from data_prep.audio.resampling import (
    MAX_KERNEL_VALUES,
    MAX_RATE_ERROR,
    SampleRateError,
    kernel_values,
    resample,
    resampling_ratio,
)
from data_prep.features.extraction import FeatureConfig, build_feature_store
from data_prep.text.vocab import CharVocab

ODD_RATES = [22051, 1_000_003, 16001, 15999, 44101, 192_001, 11025, 7919, 96_000, 2_147_483_647, 1, 101]


def test_the_kernel_size_formula_is_torchaudios():
    for orig, new in [(441, 160), (3, 1), (1, 2), (125, 2), (594, 431), (7, 13)]:
        kernel, _ = _get_sinc_resample_kernel(orig, new, 1, dtype=torch.float64)
        assert kernel.numel() == kernel_values(orig, new), (orig, new)


@pytest.mark.parametrize("to_rate", [16000, 8000, 22050])
def test_every_rate_pair_gets_a_small_kernel_and_a_close_ratio_or_is_refused(to_rate):
    rng = random.Random(to_rate)
    rates = (
        ODD_RATES
        + [rng.randint(1, 10**7) for _ in range(300)]
        + [rng.randint(7000, 50000) for _ in range(300)]
    )
    kept = 0
    for rate in rates:
        try:
            orig, new = resampling_ratio(rate, to_rate)
        except SampleRateError as err:
            assert f"{rate} Hz cannot be resampled to {to_rate} Hz" in str(err)
            continue
        kept += 1
        assert kernel_values(orig, new) <= MAX_KERNEL_VALUES, rate
        assert abs(float(Fraction(orig, new) / Fraction(rate, to_rate)) - 1) <= MAX_RATE_ERROR, rate
        if kernel_values(*Fraction(rate, to_rate).as_integer_ratio()) <= MAX_KERNEL_VALUES:
            assert Fraction(orig, new) == Fraction(rate, to_rate)  # friendly rates stay exact
    assert kept > 0.9 * len(rates)


def test_an_approximated_rate_still_gives_the_right_length_and_tone():
    rate, seconds, tone = 22051, 2.0, 440.0
    t = torch.arange(int(rate * seconds), dtype=torch.float64) / rate
    out = resample(torch.sin(2 * math.pi * tone * t).float(), rate, 16000)
    assert abs(out.numel() - 16000 * seconds) <= 2
    spectrum = torch.fft.rfft(out.double()).abs()
    assert abs(float(spectrum.argmax()) / seconds - tone) <= 1.0 / seconds  # the tone stays at 440 Hz


PEAK_SCRIPT = """
import json, resource, sys
import torch
from data_prep.audio.audio_io import read_audio_with_rate
read_audio_with_rate(sys.argv[1], 16000)  # warm up: imports and allocator at a friendly rate
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path in sys.argv[2:]:
    wave, rate = read_audio_with_rate(path, 16000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_growth_mb": (after - before) / 1024}))
"""


def test_odd_rates_are_read_within_a_memory_bound(tmp_path):
    """Peak resident memory of a fresh process (ru_maxrss, KB on Linux) before and after reading one
    second at each odd rate; torchaudio with the exact ratio needs over 1 GB for 22,051 Hz alone."""
    friendly = tmp_path / "friendly.wav"
    sf.write(str(friendly), np.zeros(44100, dtype=np.float32), 44100)
    odd = []
    for rate in (22051, 1_000_003):
        path = tmp_path / f"{rate}.wav"
        sf.write(str(path), np.random.default_rng(rate).uniform(-0.5, 0.5, rate).astype(np.float32), rate)
        odd.append(str(path))
    run = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(friendly), *odd],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert run.returncode == 0, run.stderr[-2000:]
    growth = json.loads(run.stdout.strip().splitlines()[-1])["peak_growth_mb"]
    assert growth < 150, f"reading two odd-rate seconds grew the peak by {growth:.0f} MB"


def _set_wav_rate(path: Path, rate: int) -> None:
    """Rewrite the sample rate (and byte rate) of a canonical 16-bit mono WAV header in place."""
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"fmt "
    data[24:28] = rate.to_bytes(4, "little")
    data[28:32] = (rate * 2).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_a_rate_no_fraction_fits_is_a_counted_skip_naming_the_file(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    rates = {"good-a": 16000, "good-b": 22051, "bad-2ghz": 2_147_483_647}
    for utt, rate in rates.items():
        sf.write(
            str(audio / f"{utt}.wav"),
            rng.uniform(-0.3, 0.3, 16000).astype(np.float32),
            16000,
            subtype="PCM_16",
        )
        if rate != 16000:
            _set_wav_rate(audio / f"{utt}.wav", rate)
    with pytest.raises(AudioError, match=r"bad-2ghz\.wav.*2147483647 Hz cannot be resampled") as caught:
        read_audio_with_rate(audio / "bad-2ghz.wav", 16000)
    assert caught.value.kind == "odd_sample_rate"
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"{u} {audio / u}.wav\n" for u in sorted(rates)))
    (data / "text").write_text("".join(f"{u} hello\n" for u in sorted(rates)))
    (data / "utt2spk").write_text("".join(f"{u} spk\n" for u in sorted(rates)))
    report = build_feature_store(data, tmp_path / "f", FeatureConfig(), CharVocab.default(), 0.5, False)
    assert [u for u, _ in report.problems["odd_sample_rate"]] == ["bad-2ghz"]
    assert "bad-2ghz.wav" in report.problems["odd_sample_rate"][0][1]
    assert report.resampled == [("good-b", 22051)]
