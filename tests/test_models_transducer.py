"""The RNN transducer: DSD prunes its encoder, predictor and joiner matrices and never the label
embedding; the loss backend is chosen by device; shapes and greedy decoding follow the lengths."""

import pytest
import torch

from dsd_seq.core.dsd import DSD
from dsd_seq.core.schedule import Schedule
from dsd_seq.core.selection import select_prunable
from models.speech.transducer import Transducer, TransducerConfig
from models.speech.transducer_loss import TORCHAUDIO, WARP_RNNT, loss_backend, transducer_loss

ENCODER = {
    "conv_channels": [4],
    "conv_kernels": [[5, 11]],
    "conv_strides": [[2, 2]],
    "rnn_layers": 2,
    "rnn_hidden": 16,
}


def _model(**kwargs):
    torch.manual_seed(0)
    config = TransducerConfig(num_features=20, num_classes=7, encoder=ENCODER, embed_dim=8,
                              predictor_hidden=12, joiner_dim=10, **kwargs)  # fmt: skip
    return Transducer(config)


def test_dsd_prunes_encoder_predictor_and_joiner_matrices_never_the_embedding():
    model = _model()
    names = list(select_prunable(model))
    assert "embedding.weight" not in names
    for expected in ("encoder.rnns.0.rnn.weight_ih_l0", "encoder.rnns.1.rnn.weight_hh_l0_reverse",
                     "predictor.weight_ih_l0", "predictor.weight_hh_l0", "enc_proj.weight",
                     "pred_proj.weight", "joiner.weight"):  # fmt: skip
        assert expected in names, names
    assert not any(n.startswith("encoder.convs.0") for n in names)  # the first convolution stays dense
    embedding = model.embedding.weight.detach().clone()
    dsd = DSD(model, torch.optim.Adam(model.parameters()))
    dsd.enter(Schedule.parse("S1@0.5:1e-3")[0])
    for name in names:
        weight = dict(model.named_parameters())[name]
        assert (weight == 0).float().mean().item() == pytest.approx(0.5, abs=0.01), name
    assert torch.equal(model.embedding.weight, embedding)


def test_logits_cover_every_frame_and_label_position_and_the_loss_trains():
    model = _model()
    features, lengths = torch.randn(3, 40, 20), torch.tensor([40, 31, 9])
    labels, label_lengths = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0], [2, 0, 0, 0]]), torch.tensor([4, 2, 1])
    logits, out_lengths = model(features, lengths, labels)
    assert logits.shape == (3, 20, 5, 7) and out_lengths.tolist() == [20, 16, 5]
    model.eval()
    untrained = model.greedy_decode(features, lengths)  # emits at most max_symbols_per_frame a frame
    assert max(len(d) for d in untrained) == 20 * model.config.max_symbols_per_frame
    assert all(
        len(d) <= n * 5 and all(0 < c < 7 for c in d) for d, n in zip(untrained, out_lengths, strict=True)
    )
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = transducer_loss(*model(features, lengths, labels), labels, label_lengths)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]


def test_loss_is_the_per_utterance_nll_divided_by_label_length():
    import torchaudio.functional

    logits = torch.randn(2, 6, 4, 5)
    labels, label_lengths, frames = (
        torch.tensor([[1, 2, 3], [4, 0, 0]]),
        torch.tensor([3, 1]),
        torch.tensor([6, 4]),
    )
    costs = torchaudio.functional.rnnt_loss(
        logits, labels.int(), frames.int(), label_lengths.int(), blank=0, reduction="none"
    )
    expected = (costs / label_lengths).mean()
    assert transducer_loss(logits, frames, labels, label_lengths) == pytest.approx(float(expected))


def test_backend_is_torchaudio_on_cpu_and_warp_rnnt_only_on_cuda_when_installed():
    import importlib.util

    assert loss_backend(torch.device("cpu")) == TORCHAUDIO
    has_warp = importlib.util.find_spec("warp_rnnt") is not None
    assert loss_backend(torch.device("cuda")) == (WARP_RNNT if has_warp else TORCHAUDIO)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="predictor_hidden"):
        TransducerConfig(predictor_hidden=0)
    with pytest.raises(ValueError, match="set by the task"):
        TransducerConfig(encoder={"num_classes": 3})
