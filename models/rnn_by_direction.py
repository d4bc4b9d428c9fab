"""A one-layer torch RNN over a ``PackedSequence``, run on the padded batch one direction at a time.

Why: on the CPU torch runs a packed sequence a frame at a time, taking each frame's rows of the input
projection (computed once for the whole sequence) as a ``narrow`` of it. In the backward pass every one of
those narrows allocates a zero tensor as large as the whole projection and adds it up, so the work grows
with the square of the frame count (pytorch/pytorch issues 1788 and 149194). On a padded tensor torch splits
the projection with ``unbind`` instead, whose backward is one ``stack``. Measured on 2 CPU cores, one
bidirectional layer on 8 utterances of 135-150 frames, forward and backward, 1 thread: GRU 512 894 -> 606
ms, LSTM 256 386 -> 273 ms (``benchmarks/peer_reference.py`` times the whole model both ways).

The function stays the RNN's: the forward direction reads the padded batch as it is (padding comes after
each utterance's frames, so its valid outputs never see it); the reverse direction reads every utterance
reversed within its own length and its outputs are reversed back. The parameters are the module's own, so
masks the DSD engine writes into them hold. Outputs equal the packed path's up to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence


def _recurrence(rnn: nn.RNNBase):
    """torch's padded-input function for ``rnn``'s cell type (the one ``nn.GRU`` etc. call themselves)."""
    if isinstance(rnn, nn.GRU):
        return torch.gru
    if isinstance(rnn, nn.LSTM):
        return torch.lstm
    if isinstance(rnn, nn.RNN):
        return torch.rnn_relu if rnn.nonlinearity == "relu" else torch.rnn_tanh
    raise TypeError(f"rnn_by_direction: {type(rnn).__name__} is not an nn.GRU, nn.LSTM or nn.RNN")


def check_supported(rnn: nn.RNNBase) -> None:
    """Raise unless ``rnn`` is a one-layer, time-major RNN without projections (what this path runs)."""
    _recurrence(rnn)
    if rnn.num_layers != 1 or rnn.batch_first or getattr(rnn, "proj_size", 0):
        raise ValueError(
            "rnn_by_direction runs one-layer, time-major RNNs without projections; got "
            f"num_layers={rnn.num_layers}, batch_first={rnn.batch_first}, proj_size={getattr(rnn, 'proj_size', 0)}"
        )


def reversal_index(lengths: Tensor, frames: int) -> Tensor:
    """``[frames, B]`` frame indices that reverse each utterance within its length and leave padding be."""
    t = torch.arange(frames).unsqueeze(1)
    n = lengths.unsqueeze(0)
    return torch.where(t < n, n - 1 - t, t)


def _direction(rnn: nn.RNNBase, x: Tensor, suffix: str) -> Tensor:
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if rnn.bias else [])
    weights = [getattr(rnn, f"{name}_l0{suffix}") for name in names]
    h0 = x.new_zeros(1, x.shape[1], rnn.hidden_size)
    hx = (h0, h0) if isinstance(rnn, nn.LSTM) else h0
    # (input, hx, weights, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    return _recurrence(rnn)(x, hx, weights, rnn.bias, 1, 0.0, rnn.training, False, False)[0]


def rnn_by_direction(rnn: nn.RNNBase, packed: PackedSequence) -> Tensor:
    """``rnn(packed)[0].data``, computed on the padded batch: ``[valid frames, directions * hidden]`` in the
    packed order, the directions concatenated as torch does.

    Rows are moved with ``index_select`` between the packed order and the padded ``[T, B]`` grid (a
    ``PackedSequence`` keeps its utterances sorted by length, so frame t of the b-th is packed row
    ``offset[t] + b``). Padding cells read row 0: they come after every valid frame in both directions, so
    no valid output depends on them, and their gradient is exactly zero.
    """
    check_supported(rnn)
    data, batch_sizes = packed.data, packed.batch_sizes
    frames, batch = len(batch_sizes), int(batch_sizes[0])
    if int(batch_sizes[-1]) == batch:  # no padding: the packed rows are the [T, B] grid, in order
        return rnn(data.view(frames, batch, -1))[0].flatten(0, 1)
    offsets = torch.cumsum(batch_sizes, 0) - batch_sizes
    rows = offsets.unsqueeze(1) + torch.arange(batch).unsqueeze(0)  # [T, B] packed row of each cell
    valid = torch.arange(batch).unsqueeze(0) < batch_sizes.unsqueeze(1)
    lengths = valid.sum(0)
    device = data.device

    def grid(index: Tensor) -> Tensor:  # packed rows -> [T, B, features], padding cells from row 0
        picked = torch.where(valid, index, 0).flatten().to(device)
        return data.index_select(0, picked).view(frames, batch, -1)

    def packed_order(out: Tensor, cells: Tensor) -> Tensor:  # [T, B, H] -> the valid cells, packed order
        return out.flatten(0, 1).index_select(0, cells[valid].to(device))

    column = torch.arange(batch).unsqueeze(0)
    forward_cells = torch.arange(frames).unsqueeze(1) * batch + column
    outputs = [packed_order(_direction(rnn, grid(rows), ""), forward_cells)]
    if rnn.bidirectional:
        reverse = reversal_index(
            lengths, frames
        )  # cell (t, b) of the reversed grid holds frame reverse[t, b]
        reversed_out = _direction(rnn, grid(rows.gather(0, reverse)), "_reverse")
        outputs.append(packed_order(reversed_out, reverse * batch + column))
    return torch.cat(outputs, dim=-1)
