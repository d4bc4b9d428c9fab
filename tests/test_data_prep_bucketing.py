"""Frame-budget batches from length buckets: the budget holds, every utterance comes once, the order is a
pure function of the generator, and no generator gives SortaGrad's increasing length."""

import pytest
import torch

from data_prep.batching.bucketing import FrameBudgetError, frame_budget_batches

LENGTHS = [int(x) for x in torch.randint(20, 400, (200,), generator=torch.Generator().manual_seed(0))]


def _padded(batch):
    return len(batch) * max(LENGTHS[i] for i in batch)


@pytest.mark.parametrize("seed", [None, 0, 1])
def test_every_batch_fits_the_budget_and_every_utterance_comes_once(seed):
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    batches = frame_budget_batches(LENGTHS, 1200, generator, num_buckets=6)
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
    assert all(_padded(b) <= 1200 for b in batches)
    # greedy packing: the next utterance of the bucket would not have fitted
    assert sum(_padded(b) for b in batches) <= 1.15 * sum(LENGTHS) + 1200 * 6


def test_without_a_generator_the_order_is_increasing_length():
    batches = frame_budget_batches(LENGTHS, 1200)
    flat = [i for b in batches for i in b]
    assert flat == sorted(range(len(LENGTHS)), key=lambda i: (LENGTHS[i], i))
    assert len(batches[0]) > len(batches[-1])  # short utterances pack many to a batch


def test_shuffled_order_is_a_pure_function_of_the_generator():
    first = frame_budget_batches(LENGTHS, 1200, torch.Generator().manual_seed(5))
    assert first == frame_budget_batches(LENGTHS, 1200, torch.Generator().manual_seed(5))
    assert first != frame_budget_batches(LENGTHS, 1200, torch.Generator().manual_seed(6))
    assert first != frame_budget_batches(LENGTHS, 1200)


def test_buckets_keep_padding_low_compared_with_random_batches():
    bucketed = frame_budget_batches(LENGTHS, 1200, torch.Generator().manual_seed(0), num_buckets=8)
    one_bucket = frame_budget_batches(LENGTHS, 1200, torch.Generator().manual_seed(0), num_buckets=1)
    waste = [sum(_padded(b) for b in batches) - sum(LENGTHS) for batches in (bucketed, one_bucket)]
    assert waste[0] < waste[1] / 2


def test_an_utterance_longer_than_the_budget_is_refused_with_advice():
    with pytest.raises(FrameBudgetError, match=r"399 frames.*raise the budget"):
        frame_budget_batches([10, 399, 20], 300)
    with pytest.raises(ValueError, match="must be >= 1"):
        frame_budget_batches([10], 0)
