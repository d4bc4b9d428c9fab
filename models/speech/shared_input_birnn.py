"""The bidirectional recurrent layer of DeepSpeech 1 (Hannun et al. 2014, eq. 3; DSD paper, Table 6, layer 4).

Both directions read the same input projection ``W x + b`` (one 1024x1024 matrix and bias, shared), each
direction has its own recurrent matrix and no recurrent bias, and the two directions' outputs are summed.
That is what gives the layer 3,146,752 parameters in Table 6 rather than a torch ``nn.RNN``'s 4 matrices
and 4 biases, so it is written out by hand.

The DeepSpeech 2 of the DSD paper's Table 8 uses the same layer with sequence-wise batch norm on the
projection ``W x`` instead of a bias (``input_bias=False, input_norm=True``; Amodei et al. 2016, Sec. 3.2).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from models.speech.lengths import valid_mask


class SharedInputBiRNN(nn.Module):
    """Bidirectional clipped-ReLU RNN whose two directions share their input weights.

    ``h_f[t] = min(max(W x[t] + b + U_f h_f[t-1], 0), clip)``, ``h_b[t]`` likewise from ``t+1``, and the
    output is ``h_f[t] + h_b[t]``. Padding is masked: the backward direction starts from a zero state at
    each utterance's last valid frame and padded output frames are zero, so an utterance gives the same
    outputs alone or batched with longer ones.

    The recurrent matrices are declared to the DSD engine through ``dsd_prunable``; the shared input
    weights are an ``nn.Linear`` and are found by the engine's default rule.
    """

    dsd_prunable = ("weight_hh_forward", "weight_hh_backward")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        relu_clip: float = 20.0,
        input_bias: bool = True,
        input_norm: bool = False,
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            sizes = f"input_size={input_size}, hidden_size={hidden_size}"
            raise ValueError(f"SharedInputBiRNN needs positive sizes, got {sizes}")
        if relu_clip <= 0:
            raise ValueError(f"SharedInputBiRNN relu_clip must be > 0, got {relu_clip}")
        self.hidden_size = hidden_size
        self.relu_clip = relu_clip
        self.input = nn.Linear(input_size, hidden_size, bias=input_bias)
        # sequence-wise batch norm of W x: statistics over the valid (utterance, frame) positions only
        self.input_norm = nn.BatchNorm1d(hidden_size) if input_norm else None
        self.weight_hh_forward = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.weight_hh_backward = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)), torch's own initialisation for recurrent weights."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            self.weight_hh_forward.uniform_(-bound, bound)
            self.weight_hh_backward.uniform_(-bound, bound)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Map ``x[B, T, input_size]`` with valid lengths ``lengths[B]`` to ``[B, T, hidden_size]``."""
        if x.dim() != 3:
            raise ValueError(f"SharedInputBiRNN expects input [B, T, F], got shape {tuple(x.shape)}")
        batch, frames, _ = x.shape
        projected = self.input(x)  # all frames at once; only the recurrence is sequential
        valid_bool = valid_mask(lengths, frames, x.device)
        if self.input_norm is not None:
            normalised = projected.new_zeros(projected.shape)
            normalised[valid_bool] = self.input_norm(projected[valid_bool])
            projected = normalised
        valid = valid_bool.unsqueeze(-1).to(projected.dtype)  # [B, T, 1]
        forward_out = _recurrence(projected, valid, self.weight_hh_forward, self.relu_clip, False)
        backward_out = _recurrence(projected, valid, self.weight_hh_backward, self.relu_clip, True)
        return forward_out + backward_out

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, relu_clip={self.relu_clip}, directions=summed"


@torch.jit.script_if_tracing
def _recurrence(
    projected: Tensor, valid: Tensor, weight_hh: Tensor, relu_clip: float, reverse: bool
) -> Tensor:
    """One direction over ``projected[B, T, H]``: ``h[t] = clip(projected[t] + U h[t-1]) * valid[t]``
    (the backward direction runs the same over the frames reversed).

    A function of its own so that ``torch.jit.trace`` (TorchScript / ONNX export) scripts it and keeps
    the loop over frames, instead of unrolling it for the traced utterance's length; in eager mode it
    runs as plain Python.
    """
    if reverse:
        projected, valid = projected.flip(1), valid.flip(1)
    h = projected.new_zeros([projected.shape[0], weight_hh.shape[0]])
    outputs: list[Tensor] = []
    for t in range(projected.shape[1]):
        h = torch.clamp(projected[:, t] + F.linear(h, weight_hh), 0.0, relu_clip)
        h = h * valid[:, t]  # backward: a zero state until each utterance's last valid frame
        outputs.append(h)
    out = torch.stack(outputs, dim=1)
    return out.flip(1) if reverse else out
