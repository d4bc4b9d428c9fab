"""CTC: feasibility before the loss, the loss itself, greedy decoding."""

import pytest
import torch
from torch.nn import functional as F

from models.speech.ctc import (
    CTCInfeasibleError,
    ctc_loss,
    greedy_decode,
    infeasible_utterances,
    min_ctc_frames,
)


def chars(text):
    return [ord(c) - ord("a") + 1 for c in text]


@pytest.mark.parametrize(
    ("text", "frames"), [("hello", 6), ("a", 1), ("", 0), ("abc", 3), ("aaa", 5), ("book", 5)]
)
def test_min_ctc_frames_counts_a_blank_between_repeats(text, frames):
    assert min_ctc_frames(chars(text)) == frames


def test_infeasible_utterances_lists_id_frames_and_frames_needed():
    found = infeasible_utterances(
        ["u1", "u2", "u3"], [chars("hello"), chars("hello"), chars("ab")], [6, 5, 1]
    )
    assert found == [("u2", 5, 6), ("u3", 1, 2)]


def random_batch(frames=(8, 6), classes=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(frames), max(frames), classes, generator=generator, requires_grad=True)
    return logits, torch.tensor(frames)


def test_ctc_loss_equals_torch_mean_of_loss_over_label_length():
    logits, lengths = random_batch()
    log_probs = logits.log_softmax(-1)
    labels, label_lengths = torch.tensor([[1, 2, 2], [3, 4, 0]]), torch.tensor([3, 2])
    ours = ctc_loss(log_probs, lengths, labels, label_lengths)
    per_utterance = F.ctc_loss(log_probs.transpose(0, 1), labels, lengths, label_lengths, reduction="none")
    torch.testing.assert_close(ours, (per_utterance / label_lengths).mean())
    torch.testing.assert_close(ours, F.ctc_loss(log_probs.transpose(0, 1), labels, lengths, label_lengths))
    ours.backward()
    assert torch.isfinite(logits.grad).all()


def test_ctc_loss_raises_for_an_infeasible_utterance_instead_of_zeroing_it():
    logits, lengths = random_batch(frames=(8, 3))
    labels, label_lengths = torch.tensor([[1, 2], [2, 2]]), torch.tensor([2, 2])  # "2 2" needs 3: fits
    ctc_loss(logits.log_softmax(-1), lengths, labels, label_lengths)
    labels = torch.tensor([[1, 2, 3], [2, 2, 2]])  # "2 2 2" needs 5 frames, has 3
    with pytest.raises(CTCInfeasibleError, match=r"utt-b \(3 frames, needs 5\)"):
        ctc_loss(logits.log_softmax(-1), lengths, labels, torch.tensor([3, 3]), utt_ids=["utt-a", "utt-b"])
    with pytest.raises(CTCInfeasibleError, match="batch index 1"):
        ctc_loss(logits.log_softmax(-1), lengths, labels, torch.tensor([3, 3]))


def test_ctc_loss_rejects_blank_inside_labels():
    logits, lengths = random_batch()
    with pytest.raises(ValueError, match="blank"):
        ctc_loss(logits.log_softmax(-1), lengths, torch.tensor([[1, 0], [2, 3]]), torch.tensor([2, 2]))


def test_greedy_decode_collapses_repeats_and_drops_blanks():
    paths = [[1, 1, 0, 1, 2, 2, 0, 0, 3], [0, 2, 0, 2, 2, 4, 4, 4, 4]]
    log_probs = F.one_hot(torch.tensor(paths), num_classes=5).float().mul(10).log_softmax(-1)
    assert greedy_decode(log_probs, torch.tensor([9, 5])) == [[1, 1, 2, 3], [2, 2]]
