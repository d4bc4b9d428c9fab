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

Where it pays: training steps on the CPU. A forward pass alone is not quadratic on the packed path, and
there the packed GRU is faster (it skips the padding cells: 16 utterances, lengths -10%, 195 against 206
ms; -70%, 145 against 200 ms); on a GPU cuDNN runs packed sequences itself and would copy the per-direction
weights out of its flat buffer on every call here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence


def _recurrence(rnn: nn.RNNBase):
    """torch's padded-input function for ``rnn``'s cell type (the one ``nn.GRU`` etc. call themselves)."""
    return (
        torch.gru if isinstance(rnn, nn.GRU) else torch.lstm if isinstance(rnn, nn.LSTM) else torch.rnn_tanh
    )


def _has_forward_hooks(module: nn.Module) -> bool:
    global_hooks = (
        getattr(nn.modules.module, name, None)
        for name in ("_global_forward_hooks", "_global_forward_pre_hooks")
    )
    return bool(module._forward_hooks or module._forward_pre_hooks or any(global_hooks))


def unsupported(rnn: nn.Module) -> str | None:
    """Why ``rnn`` cannot run on this path, or None when it can."""
    if not isinstance(rnn, nn.GRU | nn.LSTM | nn.RNN):
        return f"{type(rnn).__name__} is not an nn.GRU, nn.LSTM or nn.RNN"
    if isinstance(rnn, nn.RNN) and rnn.nonlinearity == "relu":
        # GRU, LSTM and tanh states stay finite on padding cells, so their gradient there is exactly zero
        return "a ReLU RNN's state is unbounded: on padding cells it can overflow, and 0 * inf makes NaN gradients"
    if rnn.num_layers != 1 or rnn.batch_first or getattr(rnn, "proj_size", 0):
        return (
            "it runs one-layer, time-major RNNs without projections; got num_layers="
            f"{rnn.num_layers}, batch_first={rnn.batch_first}, proj_size={getattr(rnn, 'proj_size', 0)}"
        )
    return None


def check_supported(rnn: nn.Module) -> None:
    """Raise a ValueError saying why, unless ``rnn`` can run on this path (see :func:`unsupported`)."""
    reason = unsupported(rnn)
    if reason is not None:
        raise ValueError(f"rnn_by_direction: {reason}")


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
    no valid output depends on them, and their gradient is exactly zero (the states of the cells this path
    runs stay finite there). Raises a ValueError for an RNN it cannot run (:func:`unsupported`); a module
    with forward hooks is called on the packed sequence itself, so that they run.
    """
    check_supported(rnn)
    data, batch_sizes = packed.data, packed.batch_sizes
    frames, batch = len(batch_sizes), int(batch_sizes[0])
    if int(batch_sizes[-1]) == batch:  # no padding: the packed rows are the [T, B] grid, in order
        return rnn(data.view(frames, batch, -1))[0].flatten(0, 1)
    if _has_forward_hooks(rnn):  # they run only when the module is called (torch.nn.utils.prune has one)
        return rnn(packed)[0].data
    offsets = torch.cumsum(batch_sizes, 0) - batch_sizes
    rows = offsets.unsqueeze(1) + torch.arange(batch).unsqueeze(0)  # [T, B] packed row of each cell
    valid = torch.arange(batch).unsqueeze(0) < batch_sizes.unsqueeze(1)
    lengths = valid.sum(0)
    device = data.device

    def on_device(index: Tensor) -> Tensor:  # built on the CPU; copied to a GPU without waiting for it
        return index if device.type == "cpu" else index.pin_memory().to(device, non_blocking=True)

    def grid(index: Tensor) -> Tensor:  # packed rows -> [T, B, features], padding cells from row 0
        return data.index_select(0, on_device(torch.where(valid, index, 0).flatten())).view(frames, batch, -1)

    def packed_order(out: Tensor, cells: Tensor) -> Tensor:  # [T, B, H] -> the valid cells, packed order
        return out.flatten(0, 1).index_select(0, on_device(cells[valid]))

    column = torch.arange(batch).unsqueeze(0)
    forward_cells = torch.arange(frames).unsqueeze(1) * batch + column
    outputs = [packed_order(_direction(rnn, grid(rows), ""), forward_cells)]
    if rnn.bidirectional:
        # cell (t, b) of the reversed grid holds frame reverse[t, b] of the b-th utterance
        reverse = reversal_index(lengths, frames)
        reversed_out = _direction(rnn, grid(rows.gather(0, reverse)), "_reverse")
        outputs.append(packed_order(reversed_out, reverse * batch + column))
    return torch.cat(outputs, dim=-1)
