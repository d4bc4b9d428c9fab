"""The transducer loss, from warp-rnnt on CUDA when installed, else torchaudio's ``rnnt_loss``.

Why two: warp-rnnt (``pip install -e ".[gpu]"``) is the faster CUDA kernel but builds only where CUDA is;
torchaudio's implementation runs everywhere. The choice is made per call from the tensors' device and
reported by :func:`loss_backend` (the speech task logs it). Both give the negative log-likelihood of each
utterance; like ``models.speech.ctc.ctc_loss`` it is divided by the label length and averaged over the batch.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor
from torch.nn import functional as F

WARP_RNNT = "warp_rnnt"
TORCHAUDIO = "torchaudio.functional.rnnt_loss"


def loss_backend(device: torch.device) -> str:
    """Which implementation :func:`transducer_loss` uses for tensors on ``device``."""
    if torch.device(device).type == "cuda" and importlib.util.find_spec("warp_rnnt") is not None:
        return WARP_RNNT
    return TORCHAUDIO


def transducer_loss(
    logits: Tensor, output_lengths: Tensor, labels: Tensor, label_lengths: Tensor, blank: int = 0
) -> Tensor:
    """Mean over the batch of each utterance's transducer loss divided by its label length.

    ``logits[B, T, L + 1, C]`` (unnormalised joiner output), ``labels[B, L]`` padded.
    """
    frames, label_lengths = output_lengths.to(torch.int32), label_lengths.to(torch.int32)
    targets = labels.to(torch.int32)
    if loss_backend(logits.device) == WARP_RNNT:
        import warp_rnnt

        costs = warp_rnnt.rnnt_loss(
            F.log_softmax(logits.float(), dim=-1), targets, frames, label_lengths, blank=blank
        )
    else:
        import torchaudio.functional

        costs = torchaudio.functional.rnnt_loss(
            logits.float(), targets, frames, label_lengths, blank=blank, reduction="none"
        )
    return (costs / label_lengths.clamp(min=1).to(costs.dtype)).mean()
