"""SpecAugment (Park et al. 2019): frequency and time masks on training features, never on evaluation.

Masks fall inside each utterance's own frames (padding is left alone, and a short utterance is not wiped
out by a mask sized for the longest one in the batch). Masked values are 0, the mean of the per-utterance
normalised features. Drawn from torch's global generator, which checkpoints save and restore, so a resumed
run draws the same masks. Off by default: the DSD paper trains without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torchaudio.transforms import FrequencyMasking, TimeMasking


@dataclass
class SpecAugmentConfig:
    """Counts and maximum widths of the masks; LibriSpeech 'basic' policy: 1 x F=27 (of 80 bins), 1 x T=100."""

    freq_masks: int = 0  # frequency masks per utterance
    freq_mask_bins: int = 0  # each mask's width is drawn from 0..freq_mask_bins
    time_masks: int = 0  # time masks per utterance
    time_mask_frames: int = 0  # each mask's width is drawn from 0..time_mask_frames
    time_mask_max_fraction: float = 1.0  # no time mask wider than this fraction of the utterance

    def __post_init__(self) -> None:
        for name in ("freq_masks", "freq_mask_bins", "time_masks", "time_mask_frames"):
            if getattr(self, name) < 0:
                raise ValueError(f"task_args.spec_augment.{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.time_mask_max_fraction <= 1.0:
            raise ValueError(
                "task_args.spec_augment.time_mask_max_fraction: must be in (0, 1], "
                f"got {self.time_mask_max_fraction}"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.freq_masks * self.freq_mask_bins or self.time_masks * self.time_mask_frames)


def spec_augment(features: Tensor, lengths: Tensor, config: SpecAugmentConfig) -> Tensor:
    """A masked copy of ``features[B, T, F]``; each utterance masked within its ``lengths[b]`` frames."""
    if not config.enabled:
        return features
    freq = FrequencyMasking(config.freq_mask_bins)
    time = TimeMasking(config.time_mask_frames, p=config.time_mask_max_fraction)
    out = features.clone()
    for b, length in enumerate(lengths.tolist()):
        spec = out[b, :length].transpose(0, 1)  # [F, T], torchaudio's layout
        for _ in range(config.freq_masks):
            spec = freq(spec)
        for _ in range(config.time_masks):
            spec = time(spec)
        out[b, :length] = spec.transpose(0, 1)
    return out
