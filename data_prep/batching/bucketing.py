"""Batches by a frame budget, drawn from duration buckets; length order for SortaGrad.

Why a frame budget: a fixed number of utterances per batch wastes memory on short ones and may not fit on
long ones; bounding the padded frames (``batch size x longest utterance``) keeps every step's cost alike.
Why buckets: utterances are shuffled only among others of similar length, so a batch pads little while
the epoch's order still changes. DeepSpeech 2 (Amodei et al. 2016, Sec. 3.1, "SortaGrad") presents the
first epoch in increasing length, which steadies early CTC training; ``generator=None`` gives that order.

The result is a list of index lists, so a distributed run can deal batch ``i`` to rank ``i % world``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class FrameBudgetError(ValueError):
    """An utterance is longer than the whole frame budget of a batch."""


def _pack(indices: Sequence[int], lengths: Sequence[int], max_frames: int) -> list[list[int]]:
    """Greedy: add utterances in the given order while ``count x longest`` stays within the budget."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in indices:
        if current and max(longest, lengths[i]) * (len(current) + 1) > max_frames:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, lengths[i])
    if current:
        batches.append(current)
    return batches


def frame_budget_batches(
    lengths: Sequence[int],
    max_frames: int,
    generator: torch.Generator | None = None,
    num_buckets: int = 8,
) -> list[list[int]]:
    """Index batches whose padded frames (``len(batch) x longest``) are at most ``max_frames``.

    Without ``generator``: every utterance in increasing length (ties by index), packed in that order
    (SortaGrad). With it: the length-sorted utterances are cut into ``num_buckets`` buckets of equal count,
    shuffled within each bucket, packed, and the batches of all buckets shuffled; a pure function of the
    generator's state. Raises :class:`FrameBudgetError` if an utterance alone exceeds the budget.
    """
    if max_frames < 1 or num_buckets < 1:
        raise ValueError(
            f"frame_budget_batches: max_frames ({max_frames}) and num_buckets ({num_buckets}) must be >= 1"
        )
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if order and lengths[order[-1]] > max_frames:
        raise FrameBudgetError(
            f"utterance index {order[-1]} has {lengths[order[-1]]} frames, more than the batch budget of "
            f"{max_frames}; raise the budget (task_args.batch_frames) to at least the longest utterance"
        )
    if generator is None:
        return _pack(order, lengths, max_frames)
    size = -(-len(order) // num_buckets)  # ceil: buckets of equal count, the last one smaller
    batches: list[list[int]] = []
    for start in range(0, len(order), max(size, 1)):
        bucket = order[start : start + size]
        shuffled = [bucket[i] for i in torch.randperm(len(bucket), generator=generator).tolist()]
        batches += _pack(shuffled, lengths, max_frames)
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
