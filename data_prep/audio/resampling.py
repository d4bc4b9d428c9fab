"""Resampling with a memory bound whatever the two rates are.

Why: torchaudio's sinc resampler builds a kernel of ``new * (orig + 2 * width)`` float64 values from the
gcd-reduced rates (``orig = from_rate / gcd``, ``new = to_rate / gcd``), with ``width`` about
``6 * orig / min(orig, new)``. For friendly rates that is tiny (44,100 -> 16,000 reduces to 441:160), but
one WAV at 22,051 Hz reduces to 22,051:16,000 (a kernel of GBs) and one at 1,000,003 Hz to tens of GB:
a single odd header would kill the whole feature stage.

So the rate ratio is replaced by the nearest fraction whose kernel stays under :data:`MAX_KERNEL_VALUES`
(22,051 Hz is resampled as if it were 22,050 Hz). The approximation changes duration and pitch by the
relative error of the fraction, allowed up to :data:`MAX_RATE_ERROR` (100 ppm: 0.17 cent, far below
what a speech recogniser or a listener notices); a pair of rates that cannot be approximated that well
is refused, so the caller can count the file as a skip.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torchaudio

#: Kernel size bound (float64 values, so 8 MB); 48,000 -> 16,000 and 44,100 -> 16,000 are far below it.
MAX_KERNEL_VALUES = 1 << 20
#: The largest relative error of the rate ratio that is accepted instead of the exact ratio.
MAX_RATE_ERROR = 1e-4
LOWPASS_FILTER_WIDTH = 6  # torchaudio's default, used below
ROLLOFF = 0.99  # torchaudio's default


class SampleRateError(ValueError):
    """Two rates whose ratio has no fraction small enough to resample with and close enough to use."""


def kernel_values(orig: int, new: int) -> int:
    """How many values torchaudio's resampling kernel holds for the reduced rates ``orig:new``."""
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / (min(orig, new) * ROLLOFF))
    return new * (2 * width + orig)


def resampling_ratio(from_rate: int, to_rate: int) -> tuple[int, int]:
    """``(orig, new)``: the exact reduced ratio if its kernel is small enough, else the closest fraction
    (best rational approximation) whose kernel is; raises SampleRateError if that one is off by more
    than :data:`MAX_RATE_ERROR`."""
    if from_rate <= 0 or to_rate <= 0:
        raise SampleRateError(f"sample rates must be positive, not {from_rate} Hz -> {to_rate} Hz")
    exact = best = Fraction(from_rate, to_rate)
    limit = math.isqrt(MAX_KERNEL_VALUES)
    while best and kernel_values(best.numerator, best.denominator) > MAX_KERNEL_VALUES and limit > 1:
        limit //= 2
        best = exact.limit_denominator(limit)  # the closest fraction with a denominator up to limit
    fits = bool(best) and kernel_values(best.numerator, best.denominator) <= MAX_KERNEL_VALUES
    if not fits or abs(float(best / exact) - 1.0) > MAX_RATE_ERROR:
        raise SampleRateError(
            f"{from_rate} Hz cannot be resampled to {to_rate} Hz with a kernel under "
            f"{MAX_KERNEL_VALUES * 8 >> 20} MB and a rate error under {MAX_RATE_ERROR:.0e}; "
            "convert the file to a common rate (e.g. 16000 Hz) first"
        )
    return best.numerator, best.denominator


def resample(wave: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    """``wave`` (..., time) at ``from_rate`` resampled to ``to_rate`` with a bounded kernel (see above)."""
    if from_rate == to_rate:
        return wave
    orig, new = resampling_ratio(from_rate, to_rate)
    return torchaudio.functional.resample(
        wave, orig, new, lowpass_filter_width=LOWPASS_FILTER_WIDTH, rolloff=ROLLOFF
    )
