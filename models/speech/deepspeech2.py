"""DeepSpeech 2 (Amodei et al. 2016): 2-D convolutions, a stack of bidirectional RNNs, CTC over characters.

Sized entirely from ``DeepSpeech2Config``. The convolutions (Sec. 3.5) shrink time by their strides, with
'same' padding in time so that ``output_lengths`` is ``ceil(frames / stride)`` per layer. Sequence-wise
batch normalisation (Sec. 3.2) normalises each recurrent layer's input over the valid (utterance, frame)
positions only: the recurrent stack runs on ``PackedSequence`` data, which holds exactly those positions,
so padding never enters the statistics nor the recurrences. The paper normalises the input projection
W x inside the recurrence; normalising x before a cuDNN GRU is the usual approximation, kept here so the
recurrent layers stay plain ``nn.GRU`` (flattened weights, fast path). On the CPU the recurrent layers run
on the padded batch, one direction at a time (``models.speech.rnn_by_direction``): the same function, without the
packed path's backward pass, whose cost grows with the square of the frame count there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from models.speech.lengths import check_lengths, valid_mask
from models.speech.rnn_by_direction import rnn_by_direction, unsupported

_RNN_TYPES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}
_MERGES = ("sum", "concat")
_RELU_CLIP = 20.0  # DS2 Sec. 3.1: clipped ReLU min(max(x, 0), 20)


@dataclass(frozen=True)
class DeepSpeech2Config:
    """Sizes of DeepSpeech 2; the conv defaults are the 2-layer 2-D front end of Amodei et al. Table 4."""

    num_features: int = 40  # filterbank bins per frame
    conv_channels: tuple[int, ...] = (32, 32)
    conv_kernels: tuple[tuple[int, int], ...] = ((11, 41), (11, 21))  # (time, freq); time must be odd
    conv_strides: tuple[tuple[int, int], ...] = ((2, 2), (1, 2))  # (time, freq)
    rnn_type: str = "gru"  # "gru" | "lstm" | "rnn" (ReLU; torch's nn.RNN cannot clip it at 20)
    rnn_layers: int = 3
    rnn_hidden: int = 512  # per direction
    bidirectional: bool = True
    bidirectional_merge: str = "sum"  # "sum" keeps the next layer's input at rnn_hidden, "concat" doubles it
    num_classes: int = 29  # blank + 28 characters; 0: no output layer (an encoder, e.g. for a transducer)
    dropout: float = 0.0  # after each recurrent layer

    def __post_init__(self) -> None:
        def fail(field: str, why: str) -> None:
            raise ValueError(f"DeepSpeech2Config.{field}: {why}, got {getattr(self, field)!r}")

        for field in ("num_features", "rnn_layers", "rnn_hidden"):
            if getattr(self, field) < 1:
                fail(field, "must be >= 1")
        if self.num_classes < 2 and self.num_classes != 0:
            fail("num_classes", "must be >= 2 (blank + at least one label), or 0 for an encoder alone")
        if not 0.0 <= self.dropout < 1.0:
            fail("dropout", "must be in [0, 1)")
        if self.rnn_type not in _RNN_TYPES:
            fail("rnn_type", f"must be one of {sorted(_RNN_TYPES)}")
        if self.bidirectional_merge not in _MERGES:
            fail("bidirectional_merge", f"must be one of {list(_MERGES)}")
        if any(c < 1 for c in self.conv_channels):
            fail("conv_channels", "every channel count must be >= 1")
        for field in ("conv_kernels", "conv_strides"):
            if len(getattr(self, field)) != len(self.conv_channels):
                fail(field, f"needs one (time, freq) pair per conv layer ({len(self.conv_channels)})")
            if any(len(pair) != 2 or min(pair) < 1 for pair in getattr(self, field)):
                fail(field, "every entry must be a (time, freq) pair of positive ints")
        if any(k_time % 2 == 0 for k_time, _ in self.conv_kernels):
            fail("conv_kernels", "time sizes must be odd so that 'same' padding keeps ceil(frames/stride)")

    @property
    def conv_output_features(self) -> int:
        """Features per frame after the convolutions: channels x remaining frequency bins."""
        if not self.conv_channels:
            return self.num_features
        bins = self.num_features
        for (_, k_freq), (_, s_freq) in zip(self.conv_kernels, self.conv_strides, strict=True):
            bins = (bins + 2 * (k_freq // 2) - k_freq) // s_freq + 1
        return self.conv_channels[-1] * bins

    @property
    def rnn_output_features(self) -> int:
        concat = self.bidirectional and self.bidirectional_merge == "concat"
        return self.rnn_hidden * (2 if concat else 1)


#: Orientations the 2-D convolutions can be computed in; both give the same function and parameters.
#: "time_freq" runs them on ``[B, C, T, F]`` (the kernel as stored); "freq_time" on ``[B, C, F, T]`` with
#: the kernel transposed, which puts the short side and the time stride innermost.
CONV_ORIENTATIONS = ("time_freq", "freq_time")
#: The orientation per device type, by measurement (benchmarks/peer_reference.py, RESULTS.md): oneDNN on
#: the CPU is 2.3-3.4x slower on the conv layers in "time_freq" (long kernel side and frequency stride
#: innermost). CUDA is not measured yet, so it keeps the layout it always had.
DEFAULT_CONV_ORIENTATION = {"cpu": "freq_time", "cuda": "time_freq"}


def conv_orientation_for(device: torch.device) -> str:
    """The measured default orientation for ``device``; devices not measured keep "time_freq"."""
    return DEFAULT_CONV_ORIENTATION.get(device.type, "time_freq")


#: How the recurrent layers are run; both give the same function. "packed": torch's RNN on the
#: ``PackedSequence``; "padded": on the padded batch, one direction at a time (``models.speech.rnn_by_direction``).
RECURRENT_PATHS = ("packed", "padded")
#: The path of training steps per device type, by measurement (benchmarks/peer_reference.py, RESULTS.md):
#: torch's packed RNN backward on the CPU grows with the square of the frame count. CUDA (cuDNN) is not
#: measured yet, so it keeps the packed path it always had. Passes without gradients (scoring, transcribing,
#: traced graphs) always run packed: no backward, and the packed GRU skips the padding cells.
DEFAULT_RECURRENT_PATH = {"cpu": "padded", "cuda": "packed"}


def recurrent_path_for(device: torch.device) -> str:
    """The measured default recurrent path for ``device``; devices not measured keep "packed"."""
    return DEFAULT_RECURRENT_PATH.get(device.type, "packed")


def _norm_valid_frames_by_index(norm: nn.Module, y: Tensor, lengths: Tensor, time_dim: int) -> Tensor:
    """``_norm_valid_frames`` by gathering the valid (utterance, frame) positions and scattering them back:
    slower on the CPU, but built from tensor operations alone, so a traced graph (TorchScript, ONNX) stays
    correct for other lengths than the example's."""
    utt, frame = valid_mask(lengths, y.shape[time_dim], y.device).nonzero(as_tuple=True)
    by_frame = y.movedim(time_dim, 1)  # [B, T, C, ...]
    out = y.new_zeros(by_frame.shape)
    out[utt, frame] = norm(by_frame[utt, frame].unsqueeze(-1)).squeeze(-1)
    return out.movedim(1, time_dim)


def _norm_valid_frames(norm: nn.Module, y: Tensor, lengths: Tensor, time_dim: int) -> Tensor:
    """Batch norm of ``y`` over its valid frames alone; padded frames come back zero.

    The valid frames of each utterance are a prefix along ``time_dim``, so they are joined by ``cat`` of
    per-utterance slices and normalised as one ``[1, C, ...]`` tensor, then split and padded back: plain
    copies, where gathering them by (utterance, frame) indices made a CPU training step about 5% slower. A batch
    without padding is normalised as it is. ``lengths`` are read on the host: keep them on the CPU.
    """
    if torch.jit.is_tracing():  # the copies below are sized by Python numbers, which a trace would freeze
        return _norm_valid_frames_by_index(norm, y, lengths, time_dim)
    frames = y.shape[time_dim]
    lens = lengths.tolist()
    if min(lens) == frames:
        return norm(y)
    dim = time_dim - 1  # the time axis of one utterance, y[b]
    valid = torch.cat([y[b].narrow(dim, 0, n) for b, n in enumerate(lens)], dim=dim)
    parts = norm(valid.unsqueeze(0)).squeeze(0).split(lens, dim=dim)
    after_time = [0, 0] * (y.dim() - 1 - time_dim)  # F.pad lists the last dimension first
    return torch.stack(
        [F.pad(part, [*after_time, 0, frames - n]) for part, n in zip(parts, lens, strict=True)]
    )


class ConvBlock(nn.Module):
    """Conv2d over (time, freq), batch norm over valid frames, clipped ReLU (hardtanh 0..20).

    The parameters are always stored (time, freq) (``conv.weight[out, in, k_time, k_freq]``), so
    checkpoints do not depend on the orientation the convolution is computed in (``CONV_ORIENTATIONS``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], stride: tuple[int, int]):
        super().__init__()
        self.time_stride = stride[0]
        # No conv bias: the batch norm right after it has its own shift.
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel,
            stride=stride,
            padding=(kernel[0] // 2, kernel[1] // 2),
            bias=False,
        )
        self.norm = nn.BatchNorm2d(out_channels)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return (lengths + self.time_stride - 1) // self.time_stride

    def forward(self, x: Tensor, lengths: Tensor, orientation: str = "time_freq") -> tuple[Tensor, Tensor]:
        """``x`` with zeros on padded frames -> the same layout, padded frames zero again.

        ``x`` is ``[B, C, T, F]`` for "time_freq" and ``[B, C, F, T]`` for "freq_time"; ``lengths`` (frames
        per utterance) are read on the host, so keep them on the CPU (a GPU tensor would make the step wait).
        """
        lengths = self.output_lengths(lengths)
        if orientation == "time_freq":
            y = self.conv(x)
        else:
            conv = self.conv
            y = F.conv2d(x, conv.weight.transpose(2, 3), None, conv.stride[::-1], conv.padding[::-1])
        time_dim = 2 if orientation == "time_freq" else 3
        return F.hardtanh(_norm_valid_frames(self.norm, y, lengths, time_dim), 0.0, _RELU_CLIP), lengths


class RecurrentLayer(nn.Module):
    """One bidirectional recurrent layer, optionally preceded by sequence-wise batch norm (DS2 Sec. 3.2).

    Works on ``PackedSequence``: ``packed.data`` holds exactly the valid (utterance, frame) positions, so
    ``BatchNorm1d`` on it normalises over those and nothing else. The torch RNN keeps its own weight storage;
    ``flatten_parameters()`` is never called here (torch's ``_apply`` does it when the module moves device),
    so the DSD engine's in-place masking keeps cuDNN's flat buffer intact.
    """

    def __init__(self, input_size: int, config: DeepSpeech2Config, batch_norm: bool) -> None:
        super().__init__()
        self.hidden_size = config.rnn_hidden
        self.sum_directions = config.bidirectional and config.bidirectional_merge == "sum"
        self.norm = nn.BatchNorm1d(input_size) if batch_norm else None
        kwargs = {"nonlinearity": "relu"} if config.rnn_type == "rnn" else {}
        self.rnn = _RNN_TYPES[config.rnn_type](
            input_size, config.rnn_hidden, bidirectional=config.bidirectional, **kwargs
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, packed: PackedSequence, path: str = "packed") -> PackedSequence:
        """``path``: one of ``RECURRENT_PATHS``; it changes speed, not the function. A module the padded
        path cannot run (``models.speech.rnn_by_direction.unsupported``) runs packed."""
        data = packed.data if self.norm is None else self.norm(packed.data)
        if path == "padded" and unsupported(self.rnn) is None:  # e.g. not a ReLU RNN
            data = rnn_by_direction(self.rnn, packed._replace(data=data))
        else:
            data = self.rnn(packed._replace(data=data))[0].data
        if self.sum_directions:
            data = data[:, : self.hidden_size] + data[:, self.hidden_size :]
        return packed._replace(data=self.dropout(data))


class DeepSpeech2(nn.Module):
    """DeepSpeech 2 acoustic model: filterbank frames -> per-frame character log-probabilities (CTC)."""

    def __init__(
        self,
        config: DeepSpeech2Config | None = None,
        conv_orientation: str | None = None,
        recurrent_path: str | None = None,
    ) -> None:
        """``conv_orientation``: one of ``CONV_ORIENTATIONS``; ``recurrent_path``: one of ``RECURRENT_PATHS``.
        None picks the measured default of the device the features are on (``DEFAULT_CONV_ORIENTATION``,
        ``DEFAULT_RECURRENT_PATH``). Both change speed, not the function."""
        super().__init__()
        self.config = config = config or DeepSpeech2Config()
        for name, value, choices in (
            ("conv_orientation", conv_orientation, CONV_ORIENTATIONS),
            ("recurrent_path", recurrent_path, RECURRENT_PATHS),
        ):
            if value not in (None, *choices):
                raise ValueError(
                    f"DeepSpeech2: {name} must be one of {list(choices)} or None (the measured default per "
                    f"device), got {value!r}"
                )
        self.conv_orientation = conv_orientation
        self.recurrent_path = recurrent_path
        in_channels = (1, *config.conv_channels[:-1])
        self.convs = nn.ModuleList(
            ConvBlock(c_in, c_out, tuple(kernel), tuple(stride))
            for c_in, c_out, kernel, stride in zip(
                in_channels, config.conv_channels, config.conv_kernels, config.conv_strides, strict=True
            )
        )
        sizes = [config.conv_output_features] + [config.rnn_output_features] * (config.rnn_layers - 1)
        self.rnns = nn.ModuleList(
            RecurrentLayer(size, config, batch_norm=i > 0) for i, size in enumerate(sizes)
        )
        self.final_norm = nn.BatchNorm1d(config.rnn_output_features)
        self.output = (
            nn.Linear(config.rnn_output_features, config.num_classes) if config.num_classes else None
        )

    def output_lengths(self, feature_lengths: Tensor) -> Tensor:
        """``ceil(frames / time_stride)`` through each conv layer; pure arithmetic, no forward pass."""
        lengths = feature_lengths.long()
        for conv in self.convs:
            lengths = conv.output_lengths(lengths)
        return lengths

    def _encode_packed(self, features: Tensor, feature_lengths: Tensor) -> tuple[PackedSequence, Tensor, int]:
        """Convolutions, recurrent stack and final norm on the valid frames; ``(packed, lengths, frames)``.

        The lengths are handled on the CPU (the packing needs them there): with ``feature_lengths`` on the
        CPU a GPU step waits for nothing here; on the GPU they are copied back once.
        """
        if features.dim() != 3 or features.shape[-1] != self.config.num_features:
            expected = f"[B, T, {self.config.num_features}]"
            raise ValueError(f"DeepSpeech2 expects features {expected}, got {tuple(features.shape)}")
        lengths = feature_lengths.cpu().long()
        check_lengths(lengths, features.shape[0], features.shape[1], "DeepSpeech2")
        valid = valid_mask(lengths, features.shape[1]).to(features.device, non_blocking=True)
        x = features * valid.unsqueeze(-1).to(features.dtype)  # [B, T, F], zero on padding
        orientation = self.conv_orientation or conv_orientation_for(features.device)
        time_axis = 2 if orientation == "time_freq" else 3
        x = x.unsqueeze(1) if orientation == "time_freq" else x.transpose(1, 2).unsqueeze(1)
        for conv in self.convs:
            x, lengths = conv(x, lengths, orientation)
        frames = x.shape[time_axis]
        # [B, T', C * F'] with features ordered (channel, bin) in both orientations
        x = x.transpose(1, 2).flatten(2) if orientation == "time_freq" else x.permute(0, 3, 1, 2).flatten(2)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        path = self.recurrent_path or recurrent_path_for(features.device)
        if torch.jit.is_tracing() or not torch.is_grad_enabled():
            path = "packed"  # exported graphs keep what they had; without a backward pass packed is no slower
        for rnn in self.rnns:
            packed = rnn(packed, path)
        out_lengths = lengths.to(feature_lengths.device, non_blocking=True)
        return packed._replace(data=self.final_norm(packed.data)), out_lengths, frames

    def encode(self, features: Tensor, feature_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """The top recurrent layer's normalised output ``[B, T', rnn_output_features]`` (zero on padding)
        and the output lengths; what a transducer's joiner reads."""
        packed, lengths, frames = self._encode_packed(features, feature_lengths)
        hidden, _ = pad_packed_sequence(packed, batch_first=True, total_length=frames)
        return hidden, lengths

    def forward(self, features: Tensor, feature_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``features[B, T, num_features]``, ``feature_lengths[B]`` -> ``(log_probs[B, T', C], lengths[B])``.

        Frames past an utterance's output length hold log-probability 0 and must be ignored (CTC does).
        """
        if self.output is None:
            raise ValueError("DeepSpeech2 built with num_classes=0 is an encoder: call encode()")
        packed, lengths, frames = self._encode_packed(features, feature_lengths)
        log_probs = F.log_softmax(self.output(packed.data), dim=-1)
        log_probs, _ = pad_packed_sequence(
            packed._replace(data=log_probs), batch_first=True, total_length=frames
        )
        return log_probs, lengths
