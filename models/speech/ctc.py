"""CTC (Graves et al. 2006) for the speech models: feasibility, loss, greedy decoding.

An utterance whose labels need more frames than the model outputs has infinite CTC loss. PyTorch's
``zero_infinity=True`` would silently turn that into 0 and hide a data or model-stride bug, so the loss
checks feasibility first and raises; ``zero_infinity`` stays on only as a backstop against numerical infs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F


class CTCInfeasibleError(ValueError):
    """Some utterances have fewer output frames than their label sequence needs under CTC."""


def min_ctc_frames(labels: Sequence[int]) -> int:
    """Frames CTC needs for ``labels``: one per label plus a blank between each pair of equal neighbours.

    ``"hello"`` needs 6: five labels and one blank to separate the two ``l``.
    """
    labels = list(labels)
    return len(labels) + sum(a == b for a, b in zip(labels, labels[1:], strict=False))


def infeasible_utterances(
    utt_ids: Sequence[str], labels_list: Sequence[Sequence[int]], num_output_frames_list: Sequence[int]
) -> list[tuple[str, int, int]]:
    """``(utt_id, frames, frames_needed)`` for every utterance CTC cannot align; run it before training."""
    if not len(utt_ids) == len(labels_list) == len(num_output_frames_list):
        raise ValueError(
            f"infeasible_utterances: got {len(utt_ids)} ids, {len(labels_list)} label sequences and "
            f"{len(num_output_frames_list)} frame counts; they must be equal"
        )
    found = []
    for utt_id, labels, frames in zip(utt_ids, labels_list, num_output_frames_list, strict=True):
        needed = min_ctc_frames(labels)
        if int(frames) < needed:
            found.append((utt_id, int(frames), needed))
    return found


def _batch_min_ctc_frames(labels: Tensor, label_lengths: Tensor) -> Tensor:
    """``min_ctc_frames`` for each row of a padded ``labels[B, L]``, vectorised."""
    if labels.shape[1] < 2:
        return label_lengths.clone()
    positions = torch.arange(1, labels.shape[1], device=labels.device).unsqueeze(0)
    repeats = (labels[:, 1:] == labels[:, :-1]) & (positions < label_lengths.unsqueeze(1))
    return label_lengths + repeats.sum(dim=1)


def ctc_loss(
    log_probs: Tensor,
    output_lengths: Tensor,
    labels: Tensor,
    label_lengths: Tensor,
    blank: int = 0,
    utt_ids: Sequence[str] | None = None,
) -> Tensor:
    """Mean over the batch of each utterance's CTC loss divided by its label length.

    ``log_probs[B, T, C]`` (batch first, log-softmaxed), ``labels[B, L]`` padded. Raises
    ``CTCInfeasibleError`` naming the utterances (by ``utt_ids`` when given, else batch index) whose
    ``output_lengths`` are too short for their labels.
    """
    if log_probs.dim() != 3:
        raise ValueError(f"ctc_loss: log_probs must be [B, T, C], got shape {tuple(log_probs.shape)}")
    batch, frames, _ = log_probs.shape
    # Lengths are read on the CPU, where torch's CTC needs them anyway: kept there by the caller, a GPU step
    # waits for nothing until the labels' checks below (one copy, only when the labels are on the GPU).
    output_lengths = output_lengths.cpu().long()
    label_lengths = label_lengths.cpu().long()
    if int(output_lengths.max()) > frames:
        raise ValueError(f"ctc_loss: output_lengths max {int(output_lengths.max())} exceeds T={frames}")
    on_labels = label_lengths.to(labels.device, non_blocking=True)
    in_labels = torch.arange(labels.shape[1], device=labels.device).unsqueeze(0) < on_labels.unsqueeze(1)
    has_blank = ((labels == blank) & in_labels).any().view(1)
    checks = torch.cat([_batch_min_ctc_frames(labels, on_labels), has_blank.long()]).cpu()  # one copy
    needed, has_blank = checks[:-1], bool(checks[-1])
    if has_blank:
        raise ValueError(f"ctc_loss: labels contain the blank index {blank}; shift the vocabulary past it")
    short = (output_lengths < needed).nonzero().flatten().tolist()
    if short:
        names = [utt_ids[i] if utt_ids is not None else f"batch index {i}" for i in short]
        details = ", ".join(
            f"{name} ({int(output_lengths[i])} frames, needs {int(needed[i])})"
            for name, i in zip(names, short, strict=True)
        )
        raise CTCInfeasibleError(
            f"CTC cannot align {len(short)} of {batch} utterances: {details}. Drop them from the data "
            "(see models.speech.ctc.infeasible_utterances) or use a model with less time striding."
        )
    return F.ctc_loss(
        log_probs.transpose(0, 1),
        labels.to(log_probs.device, non_blocking=True),
        output_lengths,
        label_lengths,
        blank=blank,
        reduction="mean",
        zero_infinity=True,
    )


def greedy_decode(log_probs: Tensor, output_lengths: Tensor, blank: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, collapse repeats, drop blanks (Graves et al. 2006, Sec. 3.2)."""
    best = log_probs.argmax(dim=-1).cpu()
    decoded = []
    for path, length in zip(best, output_lengths.cpu().tolist(), strict=True):
        collapsed = torch.unique_consecutive(path[:length])
        decoded.append([int(c) for c in collapsed if c != blank])
    return decoded
