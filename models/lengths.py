"""Utterance lengths in a padded batch: validation and the valid-frame mask both models need."""

from __future__ import annotations

import torch
from torch import Tensor


def check_lengths(lengths: Tensor, batch: int, frames: int, model: str) -> None:
    """Raise a ValueError a person can act on when ``lengths`` does not fit a ``[batch, frames]`` input."""
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(f"{model}: feature_lengths must have shape [{batch}], got {tuple(lengths.shape)}")
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > frames):
        raise ValueError(
            f"{model}: feature_lengths must be in [1, {frames}] (the padded frame count), "
            f"got min {int(lengths.min())}, max {int(lengths.max())}"
        )


def valid_mask(lengths: Tensor, frames: int, device: torch.device | None = None) -> Tensor:
    """Bool ``[B, frames]``: True where the frame belongs to the utterance, False on padding."""
    device = device if device is not None else lengths.device
    return torch.arange(frames, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)
