"""SharedInputBiRNN: DeepSpeech 1's layer 4 (shared input weights, summed directions)."""

import torch

from models.speech.shared_input_birnn import SharedInputBiRNN


def make_layer():
    torch.manual_seed(0)
    return SharedInputBiRNN(input_size=4, hidden_size=6)


def test_declares_its_recurrent_matrices_as_prunable_direct_parameters():
    layer = make_layer()
    direct = dict(layer.named_parameters(recurse=False))
    assert set(SharedInputBiRNN.dsd_prunable) <= set(direct)
    assert {name for name, _ in layer.named_parameters()} == {
        "input.weight",
        "input.bias",
        "weight_hh_forward",
        "weight_hh_backward",
    }


def test_backward_direction_sees_the_future_and_forward_direction_does_not():
    layer = make_layer()
    x = torch.rand(1, 5, 4) + 0.5  # keep pre-activations positive so the ReLU passes changes
    changed = x.clone()
    changed[0, -1] += 1.0
    lengths = torch.tensor([5])
    assert not torch.allclose(layer(x, lengths)[0, 0], layer(changed, lengths)[0, 0])

    with torch.no_grad():
        layer.weight_hh_backward.zero_()  # now the output at t=0 is h_f[0] + relu(Wx[0] + b)
    torch.testing.assert_close(layer(x, lengths)[0, :4], layer(changed, lengths)[0, :4])


def test_backward_direction_starts_at_each_utterances_last_valid_frame():
    layer = make_layer()
    short = torch.rand(1, 3, 4)
    padded = torch.cat([short, torch.full((1, 4, 4), 5.0)], dim=1)
    batch = torch.cat([padded, torch.rand(1, 7, 4)])
    out = layer(batch, torch.tensor([3, 7]))
    torch.testing.assert_close(out[0, :3], layer(short, torch.tensor([3]))[0])
    assert out[0, 3:].abs().sum() == 0


def test_masking_the_recurrent_weights_in_place_keeps_the_parameters():
    layer = make_layer()
    before = layer.weight_hh_forward.data_ptr()
    layer.weight_hh_forward.data.mul_(torch.rand(6, 6) > 0.5)
    layer(torch.rand(2, 3, 4), torch.tensor([3, 2])).sum().backward()
    assert layer.weight_hh_forward.data_ptr() == before
    assert layer.weight_hh_forward.grad is not None
