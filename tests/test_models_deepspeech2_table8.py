"""DeepSpeech 2 of the DSD paper's Table 8: every layer's parameter count, padding invariance, DSD on it."""

import pytest
import torch

from dsd_seq import DSD, Phase, select_prunable
from models.speech.ctc import ctc_loss
from models.speech.deepspeech2_table8 import DeepSpeech2Table8, DeepSpeech2Table8Config

TABLE8_PARAMETERS = {  # DSD paper (Han et al. 2017), Table 8; layers 3-8 have 9,296,320 each
    "layer0": 19_616,
    "layer1": 239_168,
    "layer2": 8_507_840,
    **{f"layer{i}": 9_296_320 for i in range(3, 9)},
    "layer9": 3_101_120,
}
TABLE8_OUTPUT = 95_054  # "CTCCost": matched by no integer class count (see the module docstring)


def tiny_config(**overrides):
    base = {"num_features": 13, "conv_channels": 2, "conv_kernels": ((3, 5), (3, 3)), "recurrent_layers": 2,
            "hidden": 8, "num_classes": 5}  # fmt: skip
    return DeepSpeech2Table8Config(**{**base, **overrides})


def test_default_per_layer_parameter_counts_equal_table8():
    with torch.device("meta"):  # 67M parameters: count them without allocating
        model = DeepSpeech2Table8()
    counts = {name: sum(p.numel() for p in layer.parameters()) for name, layer in model.layers().items()}
    output = counts.pop("output")
    assert counts == TABLE8_PARAMETERS
    assert model.config.conv_bins() == [81, 41]
    # the output layer is 1760 x 29 + 29: no integer class count gives Table 8's 95,054
    assert output == 1760 * 29 + 29
    assert all(1760 * c != TABLE8_OUTPUT and 1761 * c != TABLE8_OUTPUT for c in range(1, 200))
    total = sum(TABLE8_PARAMETERS.values()) + output
    assert sum(p.numel() for p in model.parameters()) == total
    assert 66_000_000 < total + TABLE8_OUTPUT - output < 68_000_000  # "approximately 67 million"


def test_dsd_prunes_the_recurrent_and_fc_matrices_not_the_convolutions_or_norms():
    model = DeepSpeech2Table8(tiny_config())
    names = set(select_prunable(model))
    assert "recurrent.0.weight_hh_forward" in names and "recurrent.1.weight_hh_backward" in names
    assert "recurrent.0.input.weight" in names and "fc.weight" in names
    assert not any(n.startswith("convs.") or "norm" in n or n.endswith("bias") for n in names)


def test_shapes_lengths_and_padding_invariance():
    torch.manual_seed(0)
    model = DeepSpeech2Table8(tiny_config()).eval()
    short, long = torch.randn(1, 9, 13), torch.randn(1, 16, 13)
    batch = torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 7), value=5.0), long])
    log_probs, lengths = model(batch, torch.tensor([9, 16]))
    assert log_probs.shape == (2, 8, 5) and lengths.tolist() == [5, 8]
    alone, _ = model(short, torch.tensor([9]))
    assert torch.allclose(alone[0], log_probs[0, :5], atol=1e-5)
    assert torch.all(log_probs[0, 5:] == 0)


def test_a_sparse_step_keeps_pruned_weights_zero_and_gradients_flow():
    torch.manual_seed(0)
    model = DeepSpeech2Table8(tiny_config())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    dsd = DSD(model, optimizer)
    dsd.enter(Phase(kind="sparse", epochs=1, lr=0.1, sparsity=0.5))
    features, lengths = torch.randn(2, 16, 13), torch.tensor([16, 12])
    for _ in range(2):
        optimizer.zero_grad()
        log_probs, out_lengths = model(features, lengths)
        loss = ctc_loss(log_probs, out_lengths, torch.tensor([[1, 2], [3, 4]]), torch.tensor([2, 2]))
        loss.backward()
        dsd.mask_gradients()
        optimizer.step()
        dsd.apply_masks()
    for name, mask in dsd.masks.masks.items():
        weight = dict(model.named_parameters())[name]
        assert torch.all(weight[~mask] == 0)


@pytest.mark.parametrize("bad", [{"hidden": 0}, {"num_classes": 1}, {"conv_kernels": ((4, 5), (3, 3))}])
def test_bad_sizes_are_refused_with_the_field(bad):
    with pytest.raises(ValueError, match="DeepSpeech2Table8Config"):
        tiny_config(**bad)
