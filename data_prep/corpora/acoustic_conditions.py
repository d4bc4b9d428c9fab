"""The acoustic conditions of the synthetic speech corpora: noise, rooms and channels applied to clean speech.

Why one module: the built-in corpus and the open-vocabulary one put their speakers in the same rooms and
channels, and a corpus' audio must not change because another corpus' code did. Each function is
deterministic given its generator (seeded per utterance by the caller).

- noise: white, or pink (power falling as 1/f), added at a signal-to-noise ratio;
- ``room`` and ``hall``: a synthetic room impulse response (a direct path, then Gaussian reflections
  decaying by 60 dB over RT60); small rooms RT60 0.15-0.45 s, a large hall 0.6-0.9 s;
- ``lowpass``: a low-pass channel (cut-off 3.5-6 kHz); ``telephone``: 300-3,400 Hz through 8 kHz sampling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torchaudio

CONDITION_NAMES = ("clean", "room", "lowpass", "hall", "telephone")
ROOM_RT60_S = (0.15, 0.45)
HALL_RT60_S = (0.6, 0.9)
LOWPASS_HZ = (3500.0, 6000.0)
TELEPHONE_BAND_HZ = (300.0, 3400.0)
TELEPHONE_RATE = 8000


def draw_condition_parameters(condition: str, rng: np.random.Generator) -> tuple[float, float]:
    """``(rt60_s, cutoff_hz)`` of a condition: a reverberation time for rooms, a cut-off for low-pass, else 0."""
    rt60 = {"room": ROOM_RT60_S, "hall": HALL_RT60_S}.get(condition)
    return (
        float(rng.uniform(*rt60)) if rt60 else 0.0,
        float(rng.uniform(*LOWPASS_HZ)) if condition == "lowpass" else 0.0,
    )


def make_noise(kind: str, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance white noise, or pink noise (power falling as 1/f) shaped in the frequency domain."""
    if kind == "white":
        return rng.standard_normal(num_samples)
    fft_size = 1 << max(num_samples - 1, 1).bit_length()  # a power of two: odd sizes make the FFT slow
    spectrum = np.fft.rfft(rng.standard_normal(fft_size))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n=fft_size)[:num_samples]
    return pink / (pink.std() + 1e-12)


def add_noise(wave: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    signal_power = float(np.mean(wave.astype(np.float64) ** 2))
    noise = make_noise(kind, wave.size, rng) * np.sqrt(signal_power / 10 ** (snr_db / 10))
    noisy = wave + noise
    peak = float(np.abs(noisy).max())
    if peak > 0.99:
        noisy *= 0.99 / peak
    return noisy.astype(np.float32)


def room_impulse_response(rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: a direct path, then Gaussian reflections decaying by 60 dB over ``rt60_s``."""
    n = max(2, int(rt60_s * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)  # ln(1000): -60 dB at t = rt60
    tail[: int(0.002 * sample_rate)] = 0.0  # the first reflections arrive after the direct sound
    tail *= 0.5 / np.sqrt(np.sum(tail**2))  # the reverberant energy a quarter of the direct sound's
    tail[0] = 1.0
    return tail


def reverberate(wave: np.ndarray, rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``wave`` in a synthetic room (FFT convolution), cut to its length, at its RMS level."""
    ir = room_impulse_response(rt60_s, sample_rate, rng)
    size = 1 << (wave.size + ir.size - 2).bit_length()
    wet = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(ir, size), size)[: wave.size]
    return wet * np.sqrt(np.mean(wave**2) / max(float(np.mean(wet**2)), 1e-20))


def band_limit(wave: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Keep ``low_hz``-``high_hz``: an FFT mask with raised-cosine edges 10% of the band wide."""
    size = 1 << max(wave.size - 1, 1).bit_length()
    spectrum = np.fft.rfft(wave, size)
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    edge = 0.1 * (high_hz - low_hz)

    def ramp(x: np.ndarray) -> np.ndarray:  # 0 below -edge/2, 1 above +edge/2
        return 0.5 + 0.5 * np.sin(np.pi * np.clip(x / edge, -0.5, 0.5))

    gain = ramp(high_hz - freqs) * (ramp(freqs - low_hz) if low_hz > 0 else 1.0)
    return np.fft.irfft(spectrum * gain, size)[: wave.size]


def apply_condition(plan: Any, wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The plan's room or channel, then its noise (noise is added after, as a microphone would hear it).

    ``plan`` has ``condition``, ``rt60_s``, ``cutoff_hz``, ``snr_db``, ``noise_kind`` and ``seed``.
    """
    rng = np.random.default_rng([plan.seed, 2])
    wave = wave.astype(np.float64)
    if plan.condition in ("room", "hall"):
        wave = reverberate(wave, plan.rt60_s, sample_rate, rng)
    elif plan.condition == "lowpass":
        wave = band_limit(wave, sample_rate, 0.0, plan.cutoff_hz)
    elif plan.condition == "telephone":
        narrow = torchaudio.functional.resample(torch.from_numpy(wave), sample_rate, TELEPHONE_RATE)
        narrow = band_limit(narrow.numpy(), TELEPHONE_RATE, *TELEPHONE_BAND_HZ)
        wave = torchaudio.functional.resample(torch.from_numpy(narrow), TELEPHONE_RATE, sample_rate).numpy()
    elif plan.condition != "clean":
        raise ValueError(f"unknown acoustic condition {plan.condition!r}; known: {list(CONDITION_NAMES)}")
    return add_noise(wave, plan.snr_db, plan.noise_kind, np.random.default_rng([plan.seed, 1]))
