"""The peer reference of benchmarks/peer_reference.py is the architecture it claims: deepspeech.pytorch's
DeepSpeech 2 at 161 bins has our model's sizes, output lengths and (but for biases) parameter count; the
shared synthetic speech batch spreads its lengths as asked."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
peer_reference = pytest.importorskip("peer_reference")
workloads = pytest.importorskip("workloads")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_peer_model_matches_ours_in_sizes_lengths_and_parameters(rnn_type):
    torch.manual_seed(0)
    peer = peer_reference.PeerDeepSpeech2(rnn_type, hidden=16, layers=2)
    ours = peer_reference.ours(rnn_type, hidden=16, layers=2, orientation=None)
    # the peer's two conv biases (32 + 32) against our output layer's bias (29 classes)
    assert sum(p.numel() for p in peer.parameters()) - sum(p.numel() for p in ours.parameters()) == 64 - 29
    batch = workloads.speech_batch(3, 41, torch.device("cpu"), peer_reference.BINS, lengths_on_cpu=True)
    feats, lengths = batch[0].clone(), torch.tensor([41, 30, 17])
    feats[1, 30:], feats[2, 17:] = 0.0, 0.0
    peer_log_probs, peer_lengths = peer(feats.transpose(1, 2), lengths)
    our_log_probs, our_lengths = ours(feats, lengths)
    assert peer_lengths.tolist() == our_lengths.tolist() == [21, 15, 9]
    assert peer_log_probs.shape == (21, 3, 29) and our_log_probs.shape == (3, 21, 29)
    step = peer_reference.training_step(peer, peer_reference.peer_loss, batch, "fp32", None)
    before = [p.detach().clone() for p in peer.parameters()]
    step()
    assert all(not torch.equal(a, b) for a, b in zip(before, peer.parameters(), strict=True))


def test_speech_batch_spreads_lengths_within_one_bucket():
    """``spread`` gives the batch padding (lengths evenly from ``frames`` down), with labels to match."""
    feats, lengths, labels, label_lengths = workloads.speech_batch(
        4, 40, torch.device("cpu"), 7, spread=0.5, lengths_on_cpu=True
    )
    assert feats.shape == (4, 40, 7) and labels.shape == (4, 5)
    assert lengths.tolist() == [40, 33, 27, 20] and label_lengths.tolist() == [5, 4, 3, 2]
    _, lengths, _, label_lengths = workloads.speech_batch(2, 40, torch.device("cpu"), 7, lengths_on_cpu=True)
    assert lengths.tolist() == [40, 40] and label_lengths.tolist() == [5, 5]
