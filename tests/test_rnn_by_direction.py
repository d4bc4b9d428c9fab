"""The padded, one-direction-at-a-time RNN computes what torch's RNN computes on the packed sequence:
outputs, input gradients and weight gradients, for every cell type, with and without padding and biases."""

import pytest
import torch
from torch import nn
from torch.nn.utils import prune
from torch.nn.utils.rnn import pack_padded_sequence

from models.speech.rnn_by_direction import check_supported, reversal_index, rnn_by_direction, unsupported

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

CELLS = {
    "gru": lambda **kw: nn.GRU(5, 7, **kw),
    "lstm": lambda **kw: nn.LSTM(5, 7, **kw),
    "rnn_tanh": lambda **kw: nn.RNN(5, 7, **kw),
}


def x_valid(lengths):
    """Bool ``[T, B]``: the valid frames of the padded input ``run`` feeds."""
    return torch.arange(max(lengths)).unsqueeze(1) < torch.tensor(lengths).unsqueeze(0)


def run(rnn, fn, lengths):
    """Output data, input gradient and weight gradients of ``fn`` on one fixed padded batch."""
    x = torch.randn(max(lengths), len(lengths), 5, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    rnn.zero_grad()
    out = fn(rnn, packed)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    return out.detach(), x.grad, {name: p.grad.clone() for name, p in rnn.named_parameters()}


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lengths", [[4, 9, 1, 6], [6, 6, 6]], ids=["padded", "no-padding"])
def test_equals_torch_on_the_packed_sequence(cell, bidirectional, bias, lengths):
    torch.manual_seed(0)
    rnn = CELLS[cell](bidirectional=bidirectional, bias=bias)
    want = run(rnn, lambda m, p: m(p)[0].data, lengths)
    got = run(rnn, rnn_by_direction, lengths)
    assert got[0].shape == (sum(lengths), 7 * (2 if bidirectional else 1))
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-5)
    assert got[2].keys() == want[2].keys()
    for name in want[2]:
        torch.testing.assert_close(got[2][name], want[2][name], rtol=1e-5, atol=1e-5, msg=name)
    assert (got[1][x_valid(lengths)].abs().sum(-1) > 0).all()  # the gradient reaches every valid frame


def test_reversal_index_reverses_each_utterance_within_its_length_and_keeps_padding():
    assert reversal_index(torch.tensor([3, 1, 2]), 3).tolist() == [[2, 0, 1], [1, 1, 0], [0, 2, 2]]


def test_a_module_with_forward_hooks_is_called_so_that_they_run():
    """torch.nn.utils.prune recomputes the weight in a forward pre-hook; read without it, the weight is the
    tensor of the previous call and the second backward fails."""
    torch.manual_seed(0)
    rnn = nn.GRU(5, 7, bidirectional=True)
    prune.l1_unstructured(rnn, "weight_hh_l0", amount=0.5)
    for _ in range(2):
        got = run(rnn, rnn_by_direction, [4, 9, 1])
    want = run(rnn, lambda m, p: m(p)[0].data, [4, 9, 1])
    for a, b in zip(got[:2], want[:2], strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda: nn.GRU(5, 7, num_layers=2), "one-layer, time-major"),
        (lambda: nn.GRU(5, 7, batch_first=True), "one-layer, time-major"),
        (lambda: nn.LSTM(5, 7, proj_size=3), "one-layer, time-major"),
        (lambda: nn.RNN(5, 7, nonlinearity="relu"), "ReLU RNN's state is unbounded"),
        (lambda: nn.GRUCell(5, 7), "GRUCell is not an nn.GRU"),
    ],
    ids=["two-layers", "batch-first", "projection", "relu", "cell"],
)
def test_rnns_it_cannot_run_are_refused_saying_why(build, why):
    rnn = build()
    assert why in unsupported(rnn)
    with pytest.raises(ValueError, match=why):
        check_supported(rnn)
