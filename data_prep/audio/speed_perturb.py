"""Speed perturbation the Kaldi way (Ko et al. 2015): extra training copies at 0.9x and 1.1x speed.

Resampling a wave as if it had been recorded at ``factor x`` the sample rate changes tempo and pitch
together, as Kaldi's ``sox speed`` does. Copies are made once, when features are cached (features are
not recomputed per epoch), under new utterance ids ``sp<factor>-<utt_id>`` so they are never mistaken for
the original recordings; held-out splits are never perturbed.
"""

from __future__ import annotations

import torch
import torchaudio


def parse_speed_factors(text: str) -> tuple[float, ...]:
    """``"0.9,1.1"`` (commas or spaces) -> (0.9, 1.1); 1.0 is the original and is dropped."""
    try:
        factors = [float(f) for f in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"speed factors {text!r}: expected numbers such as '0.9,1.1'") from None
    bad = [f for f in factors if not 0.5 <= f <= 2.0]
    if bad:
        raise ValueError(f"speed factors {bad}: each must be in [0.5, 2.0] (Kaldi uses 0.9 and 1.1)")
    return tuple(sorted({f for f in factors if f != 1.0}))


def perturbed_utt_id(utt_id: str, factor: float) -> str:
    return f"sp{factor:g}-{utt_id}"


def speed_perturb(wave: torch.Tensor, sample_rate: int, factor: float) -> torch.Tensor:
    """``wave`` played ``factor`` times faster: ``len / factor`` samples, pitch scaled by ``factor``."""
    return torchaudio.functional.resample(
        wave.reshape(-1).to(torch.float32), int(round(sample_rate * factor)), sample_rate
    )
