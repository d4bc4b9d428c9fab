"""DeepSpeech 2: config validation, strides, padding invariance, gradients, in-place masking, overfitting."""

import math
import warnings

import pytest
import torch

from models.ctc import ctc_loss, greedy_decode
from models.deepspeech2 import DeepSpeech2, DeepSpeech2Config

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def tiny_config(**overrides):
    fields = {
        "num_features": 8,
        "conv_channels": (3, 4),
        "conv_kernels": ((5, 5), (3, 3)),
        "conv_strides": ((2, 2), (1, 2)),
        "rnn_layers": 2,
        "rnn_hidden": 12,
        "num_classes": 6,
    }
    return DeepSpeech2Config(**{**fields, **overrides})


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops run fastest on one thread, and do not stall when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rnn_type": "transformer"}, "rnn_type"),
        ({"bidirectional_merge": "mean"}, "bidirectional_merge"),
        ({"conv_strides": ((2, 2),)}, "conv_strides"),
        ({"conv_kernels": ((4, 5), (3, 3))}, "conv_kernels"),
        ({"rnn_layers": 0}, "rnn_layers"),
        ({"num_classes": 1}, "num_classes"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_invalid_config_raises_value_error_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"DeepSpeech2Config.{field}"):
        tiny_config(**overrides)


@pytest.mark.parametrize("frames", [1, 2, 7, 10, 13])
@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("merge", ["sum", "concat"])
def test_shapes_and_output_lengths_are_ceil_of_frames_over_time_stride(frames, rnn_type, merge):
    model = DeepSpeech2(tiny_config(rnn_type=rnn_type, bidirectional_merge=merge))
    lengths = torch.tensor([frames, max(1, frames - 4)])
    log_probs, out_lengths = model(torch.randn(2, frames, 8), lengths)
    expected = [math.ceil(n / 2) for n in lengths.tolist()]
    assert out_lengths.tolist() == model.output_lengths(lengths).tolist() == expected
    assert log_probs.shape == (2, math.ceil(frames / 2), 6)
    assert torch.allclose(log_probs[0].exp().sum(-1), torch.ones(expected[0]))


def test_default_config_builds_and_runs():
    model = DeepSpeech2()
    log_probs, lengths = model(torch.randn(2, 9, 40), torch.tensor([9, 4]))
    assert log_probs.shape == (2, 5, 29) and lengths.tolist() == [5, 2]


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_utterance_gives_same_log_probs_alone_and_batched_with_longer_one(rnn_type):
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config(rnn_type=rnn_type, dropout=0.2))
    model(torch.randn(4, 20, 8), torch.tensor([20, 15, 9, 4]))  # one training step's worth of BN statistics
    model.eval()
    short, long = torch.randn(1, 7, 8), torch.randn(1, 19, 8)
    batch = torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 12), value=3.0), long])  # non-zero padding
    alone, alone_lengths = model(short, torch.tensor([7]))
    batched, lengths = model(batch, torch.tensor([7, 19]))
    assert lengths.tolist() == [4, 10] and alone_lengths.tolist() == [4]
    torch.testing.assert_close(batched[0, :4], alone[0])


def test_padding_is_excluded_from_batch_norm_statistics_in_training():
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config())
    features = torch.randn(2, 10, 8)
    a, _ = model(features, torch.tensor([10, 6]))
    padded = torch.cat([features, torch.full((2, 6, 8), 7.0)], dim=1)
    b, _ = model(padded, torch.tensor([10, 6]))
    torch.testing.assert_close(a[0], b[0, :5])
    torch.testing.assert_close(a[1, :3], b[1, :3])


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config(rnn_layers=3, rnn_type="lstm", bidirectional_merge="concat"))
    log_probs, lengths = model(torch.randn(3, 16, 8), torch.tensor([16, 11, 6]))
    labels = torch.tensor([[1, 2, 3], [4, 5, 0], [2, 0, 0]])
    ctc_loss(log_probs, lengths, labels, torch.tensor([3, 2, 1])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("device", DEVICES)
def test_masking_gru_weights_in_place_keeps_storage_and_flat_weights(device):
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config()).to(device)
    features, lengths = torch.randn(2, 10, 8, device=device), torch.tensor([10, 7], device=device)
    model(features, lengths)
    gru_weights = {n: p for n, p in model.named_parameters() if ".rnn.weight_" in n}
    assert len(gru_weights) == 2 * 2 * 2  # 2 layers x (ih, hh) x 2 directions
    pointers = {n: p.data_ptr() for n, p in gru_weights.items()}
    for p in gru_weights.values():
        p.data.mul_(torch.rand_like(p) > 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "RNN module weights are not part of single contiguous chunk"
        model(features, lengths)[0].sum().backward()
    assert {n: p.data_ptr() for n, p in gru_weights.items()} == pointers


def test_tiny_model_overfits_two_utterances_and_greedy_decoding_recovers_them():
    torch.manual_seed(0)
    model = DeepSpeech2(
        tiny_config(conv_channels=(4,), conv_kernels=((3, 3),), conv_strides=((2, 2),), rnn_hidden=32)
    )
    features, lengths = torch.randn(2, 24, 8), torch.tensor([24, 18])
    labels = torch.tensor([[1, 3, 3, 5], [4, 2, 1, 0]])
    label_lengths = torch.tensor([4, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        log_probs, out_lengths = model(features, lengths)
        ctc_loss(log_probs, out_lengths, labels, label_lengths).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        log_probs, out_lengths = model(features, lengths)
    assert greedy_decode(log_probs, out_lengths) == [[1, 3, 3, 5], [4, 2, 1]]
