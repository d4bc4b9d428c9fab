"""CTC prefix beam search: exact against brute-force enumeration of every path on tiny inputs, equal to
greedy on peaked distributions, and better than greedy where many paths share one label sequence."""

import itertools
import math

import pytest
import torch

from models.speech.ctc import greedy_decode
from models.speech.ctc_beam_search import beam_decode, prefix_beam_search


def _brute_force(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """log P(labels) for every label sequence, by summing all C^T frame paths that collapse to it."""
    frames, classes = log_probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(classes), repeat=frames):
        collapsed = tuple(c for i, c in enumerate(path) if c != 0 and (i == 0 or path[i - 1] != c))
        p = sum(float(log_probs[t, c]) for t, c in enumerate(path))
        totals[collapsed] = float(
            torch.logaddexp(torch.tensor(totals.get(collapsed, -math.inf)), torch.tensor(p))
        )
    return totals


@pytest.mark.parametrize("seed", range(6))
def test_a_wide_beam_finds_the_most_probable_sequence_and_its_exact_probability(seed):
    log_probs = torch.randn(5, 3, generator=torch.Generator().manual_seed(seed)).log_softmax(-1)
    exact = _brute_force(log_probs)
    nbest = prefix_beam_search(log_probs, beam_size=100)
    best = max(exact, key=exact.get)
    assert nbest[0][0] == best and nbest[0][1] == pytest.approx(exact[best], abs=1e-5)
    for labels, logp in nbest:  # every prefix kept carries its exact total probability
        assert logp == pytest.approx(exact[labels], abs=1e-5)
    assert math.fsum(math.exp(p) for p in exact.values()) == pytest.approx(1.0, abs=1e-6)


def test_peaked_distributions_give_the_greedy_result():
    torch.manual_seed(0)
    best_paths = torch.randint(0, 6, (4, 30))
    logits = torch.randn(4, 30, 6) + 12.0 * torch.nn.functional.one_hot(best_paths, 6)
    log_probs, lengths = logits.log_softmax(-1), torch.tensor([30, 25, 12, 1])
    assert beam_decode(log_probs, lengths, beam_size=4) == greedy_decode(log_probs, lengths)


def test_summing_paths_beats_the_single_best_path():
    # Best path is "blank blank" (0.6^2 = 0.36); label 1 via "1 1", "1 -", "- 1" has 0.64 in total.
    probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]])
    log_probs = probs.log().unsqueeze(0)
    assert greedy_decode(log_probs, torch.tensor([2])) == [[]]
    assert beam_decode(log_probs, torch.tensor([2]), beam_size=2) == [[1]]
    assert prefix_beam_search(probs.log(), 2)[0][1] == pytest.approx(math.log(0.64))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="beam_size"):
        prefix_beam_search(torch.zeros(3, 2), beam_size=0)
    with pytest.raises(ValueError, match=r"\[T, C\]"):
        prefix_beam_search(torch.zeros(1, 3, 2))
