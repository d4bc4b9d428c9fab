"""Utterance lengths in a padded batch: validation and the valid-frame mask both models need."""

from __future__ import annotations

import torch
from torch import Tensor


def check_lengths(lengths: Tensor, batch: int, frames: int, model: str) -> None:
    """Raise a ValueError a person can act on when ``lengths`` does not fit a ``[batch, frames]`` input.

    Reads the lengths on the CPU: free when they are kept there (as the models do), one copy otherwise.
    """
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(f"{model}: feature_lengths must have shape [{batch}], got {tuple(lengths.shape)}")
    if not batch:
        return
    low, high = (int(v) for v in lengths.cpu().aminmax())
    if low < 1 or high > frames:
        raise ValueError(
            f"{model}: feature_lengths must be in [1, {frames}] (the padded frame count), got min {low}, max {high}"
        )


def valid_mask(lengths: Tensor, frames: int, device: torch.device | None = None) -> Tensor:
    """Bool ``[B, frames]``: True where the frame belongs to the utterance, False on padding.

    With CPU ``lengths`` and a CUDA ``device`` the lengths are copied without waiting for the GPU.
    """
    device = device if device is not None else lengths.device
    lengths = lengths.to(device, non_blocking=True)
    return torch.arange(frames, device=device).unsqueeze(0) < lengths.unsqueeze(1)
