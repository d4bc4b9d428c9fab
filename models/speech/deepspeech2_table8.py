"""The 67M-parameter DeepSpeech 2 of the DSD paper (Han et al. 2017, Table 8), layer by layer.

Table 8 lists only parameter counts; each one fixes the layer's structure once checked by arithmetic
(``tests/test_models_deepspeech2_table8.py`` asserts every count):

- conv 0: 32 filters of 11 (time) x 41 (frequency) over 161 bins, stride 2 in frequency (81 bins out), no
  bias, then batch norm over the 32 x 81 channel-frequency features: 14,432 + 2 x 2,592 = 19,616;
- conv 1: 32 -> 32 filters 11 x 21, stride 2 in frequency (41 bins out), no bias, batch norm over
  32 x 41 = 1,312 features: 236,544 + 2,624 = 239,168;
- BR 2: a simple (not gated) bidirectional recurrence of 1,760 units, one input matrix shared by both
  directions with sequence-wise batch norm on its projection (no bias), one recurrent matrix per direction,
  directions summed: 1,312 x 1,760 + 2 x 1,760 + 2 x 1,760^2 = 8,507,840;
- BR 3-8: the same from 1,760 inputs: 1,760^2 + 2 x 1,760 + 2 x 1,760^2 = 9,296,320 each;
- FC 9: 1,760 x 1,760 with batch norm, no bias: 3,101,120.

What could not be matched: the output layer's 95,054 ("CTCCost") does not factor as 1,760 x C or
1,761 x C (weights, or weights and biases, for C classes) for any integer C; the nearest are 54 classes
without bias (95,040) or with it (95,094). Here the output layer is 1,760 x C + C with C the task's
character count (29 for the recipes' blank + 28 characters), and the docstring, not the count, says why.
The time strides are not in Table 8 either (no parameter depends on them); the default strides time by 2
in conv 0, as DeepSpeech 2 does for characters (Amodei et al. 2016, Sec. 3.5 and 3.9), so one output
frame covers 20 ms.

The activation is DeepSpeech 2's clipped ReLU min(max(x, 0), 20). Batch norm is sequence-wise: its
statistics are taken over the valid (utterance, frame) positions only, so padding never enters them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from models.speech.lengths import check_lengths, valid_mask
from models.speech.shared_input_birnn import SharedInputBiRNN

RELU_CLIP = 20.0


@dataclass(frozen=True)
class DeepSpeech2Table8Config:
    """Sizes of the Table 8 network; the defaults give its parameter counts."""

    num_features: int = 161  # spectrogram bins (conv 0 reads 161 bins: 81 after a stride-2 41-wide filter)
    conv_channels: int = 32
    conv_kernels: tuple[tuple[int, int], ...] = ((11, 41), (11, 21))  # (time, freq)
    conv_time_strides: tuple[int, ...] = (2, 1)  # not in Table 8 (see the module docstring)
    recurrent_layers: int = 7  # BR layers 2-8
    hidden: int = 1760
    num_classes: int = 29  # blank + 28 characters

    def __post_init__(self) -> None:
        for name in ("num_features", "conv_channels", "recurrent_layers", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"DeepSpeech2Table8Config.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise ValueError(f"DeepSpeech2Table8Config.num_classes must be >= 2, got {self.num_classes}")
        if len(self.conv_kernels) != len(self.conv_time_strides) or not self.conv_kernels:
            raise ValueError("DeepSpeech2Table8Config: one time stride per conv kernel, at least one conv")
        if any(k_time % 2 == 0 for k_time, _ in self.conv_kernels) or min(self.conv_time_strides) < 1:
            raise ValueError("DeepSpeech2Table8Config: conv time sizes must be odd and strides >= 1")

    def conv_bins(self) -> list[int]:
        """Frequency bins after each conv layer ('same' padding, stride 2 in frequency)."""
        bins, out = self.num_features, []
        for _, k_freq in self.conv_kernels:
            bins = (bins + 2 * (k_freq // 2) - k_freq) // 2 + 1
            out.append(bins)
        return out


def _masked_batch_norm(norm: nn.BatchNorm1d, x: Tensor, valid: Tensor) -> Tensor:
    """Batch norm of ``x[B, T, D]`` over its valid frames; padded frames come out zero."""
    out = x.new_zeros(x.shape)
    out[valid] = norm(x[valid])
    return out


class Table8Conv(nn.Module):
    """A bias-free 2-D convolution whose batch norm spans channels x frequency bins (one statistic each)."""

    def __init__(self, in_channels: int, config: DeepSpeech2Table8Config, index: int) -> None:
        super().__init__()
        kernel = config.conv_kernels[index]
        self.time_stride = config.conv_time_strides[index]
        self.conv = nn.Conv2d(
            in_channels,
            config.conv_channels,
            kernel,
            stride=(self.time_stride, 2),
            padding=(kernel[0] // 2, kernel[1] // 2),
            bias=False,
        )
        self.norm = nn.BatchNorm1d(config.conv_channels * config.conv_bins()[index])

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return (lengths + self.time_stride - 1) // self.time_stride

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``x[B, C, T, F]`` -> ``[B, C', T', F']`` and the new lengths; padded frames zero."""
        y = self.conv(x)
        lengths = self.output_lengths(lengths)
        batch, channels, frames, bins = y.shape
        valid = valid_mask(lengths, frames, y.device)
        flat = y.permute(0, 2, 1, 3).reshape(batch, frames, channels * bins)
        flat = _masked_batch_norm(self.norm, flat, valid)
        y = flat.reshape(batch, frames, channels, bins).permute(0, 2, 1, 3)
        return torch.clamp(y, 0.0, RELU_CLIP), lengths


class DeepSpeech2Table8(nn.Module):
    """Table 8's DeepSpeech 2: 2 convs, 7 shared-input simple BiRNNs, 1 FC, CTC output (~67M parameters)."""

    def __init__(self, config: DeepSpeech2Table8Config | None = None) -> None:
        super().__init__()
        self.config = config = config or DeepSpeech2Table8Config()
        self.convs = nn.ModuleList(
            Table8Conv(1 if i == 0 else config.conv_channels, config, i)
            for i in range(len(config.conv_kernels))
        )
        first = config.conv_channels * config.conv_bins()[-1]
        self.recurrent = nn.ModuleList(
            SharedInputBiRNN(
                first if i == 0 else config.hidden,
                config.hidden,
                relu_clip=RELU_CLIP,
                input_bias=False,
                input_norm=True,
            )
            for i in range(config.recurrent_layers)
        )
        self.fc = nn.Linear(config.hidden, config.hidden, bias=False)
        self.fc_norm = nn.BatchNorm1d(config.hidden)
        self.output = nn.Linear(config.hidden, config.num_classes)

    def layers(self) -> dict[str, nn.Module]:
        """The weight layers in Table 8's order (layer ids 0-10), for parameter reports."""
        named: dict[str, nn.Module] = {f"layer{i}": conv for i, conv in enumerate(self.convs)}
        first = len(self.convs)
        named.update({f"layer{first + i}": rnn for i, rnn in enumerate(self.recurrent)})
        fc_id = first + len(self.recurrent)
        named[f"layer{fc_id}"] = nn.ModuleList([self.fc, self.fc_norm])
        named["output"] = self.output
        return named

    def output_lengths(self, feature_lengths: Tensor) -> Tensor:
        lengths = feature_lengths.long()
        for conv in self.convs:
            lengths = conv.output_lengths(lengths)
        return lengths

    def forward(self, features: Tensor, feature_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``features[B, T, num_features]``, ``feature_lengths[B]`` -> ``(log_probs[B, T', C], lengths[B])``."""
        if features.dim() != 3 or features.shape[-1] != self.config.num_features:
            expected = f"[B, T, {self.config.num_features}]"
            raise ValueError(f"DeepSpeech2Table8 expects features {expected}, got {tuple(features.shape)}")
        check_lengths(feature_lengths, features.shape[0], features.shape[1], "DeepSpeech2Table8")
        lengths = feature_lengths.long()
        valid = valid_mask(lengths, features.shape[1], features.device)
        x = (features * valid.unsqueeze(-1).to(features.dtype)).unsqueeze(1)  # [B, 1, T, F]
        for conv in self.convs:
            x, lengths = conv(x, lengths)
        x = x.permute(0, 2, 1, 3).flatten(2)  # [B, T', C * F']
        for rnn in self.recurrent:
            x = rnn(x, lengths)
        valid = valid_mask(lengths, x.shape[1], x.device)
        x = torch.clamp(_masked_batch_norm(self.fc_norm, self.fc(x), valid), 0.0, RELU_CLIP)
        log_probs = F.log_softmax(self.output(x), dim=-1) * valid.unsqueeze(-1).to(x.dtype)
        return log_probs, lengths.to(feature_lengths.device)
