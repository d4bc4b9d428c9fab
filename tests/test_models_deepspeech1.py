"""DeepSpeech 1: the paper's Table 6 sizes, shapes, padding invariance."""

import pytest
import torch

from models.speech.deepspeech1 import DeepSpeech1, DeepSpeech1Config, stack_context

TABLE6_PARAMETERS = {  # DSD paper (Han et al. 2017), Table 6
    "layer1": 1_814_528,
    "layer2": 1_049_600,
    "layer3": 1_049_600,
    "layer4": 3_146_752,
    "layer5": 1_049_600,
    "output": 29_725,
}


def tiny_config(**overrides):
    return DeepSpeech1Config(**{"num_features": 6, "context": 2, "hidden": 8, "num_classes": 5, **overrides})


def test_default_per_layer_parameter_counts_equal_table6():
    model = DeepSpeech1()
    counts = {name: sum(p.numel() for p in layer.parameters()) for name, layer in model.layers().items()}
    assert counts == TABLE6_PARAMETERS
    assert sum(p.numel() for p in model.parameters()) == sum(TABLE6_PARAMETERS.values())


def test_context_window_zero_pads_edges_and_orders_past_to_future():
    frames = torch.arange(1.0, 4.0).view(1, 3, 1)  # frames 1, 2, 3 with one feature each
    stacked = stack_context(frames, context=1)
    assert stacked.squeeze(0).tolist() == [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 0.0]]


@pytest.mark.parametrize("frames", [1, 7, 13])
def test_shapes_and_output_lengths_keep_frame_rate(frames):
    model = DeepSpeech1(tiny_config())
    lengths = torch.tensor([frames, max(1, frames - 3)])
    log_probs, out_lengths = model(torch.randn(2, frames, 6), lengths)
    assert log_probs.shape == (2, frames, 5)
    assert out_lengths.tolist() == lengths.tolist() == model.output_lengths(lengths).tolist()
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, frames))


def test_utterance_gives_same_log_probs_alone_and_batched_with_longer_one():
    torch.manual_seed(0)
    model = DeepSpeech1(tiny_config(dropout=0.1)).eval()
    short, long = torch.randn(1, 5, 6), torch.randn(1, 11, 6)
    batch = torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 6), value=3.0), long])  # non-zero padding
    alone, _ = model(short, torch.tensor([5]))
    batched, _ = model(batch, torch.tensor([5, 11]))
    torch.testing.assert_close(batched[0, :5], alone[0])


def test_bad_config_and_inputs_raise_errors_naming_the_problem():
    with pytest.raises(ValueError, match="DeepSpeech1Config.dropout"):
        DeepSpeech1Config(dropout=1.0)
    model = DeepSpeech1(tiny_config())
    with pytest.raises(ValueError, match="features"):
        model(torch.randn(1, 4, 7), torch.tensor([4]))
    with pytest.raises(ValueError, match="feature_lengths"):
        model(torch.randn(1, 4, 6), torch.tensor([5]))
