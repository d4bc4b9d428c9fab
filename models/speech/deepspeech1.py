"""DeepSpeech 1 (Hannun et al. 2014) as trained with DSD in the DSD paper (Han et al. 2017), Table 6.

Five hidden layers: three frame-wise clipped-ReLU layers over a context window of spectrogram frames, one
bidirectional recurrent layer (shared input weights, directions summed) and one more frame-wise layer, then
a softmax over 29 characters (blank, a-z, space, apostrophe). With the defaults the per-layer parameter
counts are those of Table 6: 1,814,528 / 1,049,600 / 1,049,600 / 3,146,752 / 1,049,600 / 29,725.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from models.speech.lengths import check_lengths, valid_mask
from models.speech.shared_input_birnn import SharedInputBiRNN


@dataclass(frozen=True)
class DeepSpeech1Config:
    """Sizes of DeepSpeech 1; defaults are the DSD paper's Table 6."""

    num_features: int = 161  # spectrogram bins per frame (Table 6: 161 x 11 inputs to layer 1)
    context: int = 5  # frames of context on each side: 2*5+1 = 11 frames per input (Hannun et al. Sec. 2)
    hidden: int = 1024  # width of every hidden layer (Table 6)
    num_classes: int = 29  # blank + 28 characters (Table 6, output layer 1024 x 29)
    relu_clip: float = 20.0  # g(z) = min(max(z, 0), 20) (Hannun et al. Sec. 2)
    dropout: float = 0.0  # on the frame-wise layers' outputs (Hannun et al. used 5-10%)

    def __post_init__(self) -> None:
        for name in ("num_features", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"DeepSpeech1Config.{name} must be >= 1, got {getattr(self, name)}")
        if self.context < 0:
            raise ValueError(f"DeepSpeech1Config.context must be >= 0, got {self.context}")
        if self.num_classes < 2:
            raise ValueError(
                f"DeepSpeech1Config.num_classes must be >= 2 (blank + a label), got {self.num_classes}"
            )
        if self.relu_clip <= 0:
            raise ValueError(f"DeepSpeech1Config.relu_clip must be > 0, got {self.relu_clip}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"DeepSpeech1Config.dropout must be in [0, 1), got {self.dropout}")


def stack_context(features: Tensor, context: int) -> Tensor:
    """``[B, T, F] -> [B, T, (2*context+1)*F]``: each frame with its neighbours, zeros beyond the edges.

    Order is frame ``t-context`` first, ``t+context`` last. Frames beyond an utterance's length must already
    be zero, so that they look like the zero edge padding.
    """
    if context == 0:
        return features
    frames = features.shape[1]
    padded = F.pad(features, (0, 0, context, context))
    return torch.cat([padded[:, i : i + frames] for i in range(2 * context + 1)], dim=-1)


class DeepSpeech1(nn.Module):
    """DeepSpeech 1 acoustic model: spectrogram frames -> per-frame character log-probabilities (CTC).

    The output frame rate equals the input frame rate, so ``output_lengths(l) == l``.
    """

    def __init__(self, config: DeepSpeech1Config | None = None) -> None:
        super().__init__()
        self.config = config = config or DeepSpeech1Config()
        window = 2 * config.context + 1
        self.fc1 = nn.Linear(config.num_features * window, config.hidden)
        self.fc2 = nn.Linear(config.hidden, config.hidden)
        self.fc3 = nn.Linear(config.hidden, config.hidden)
        self.birnn = SharedInputBiRNN(config.hidden, config.hidden, relu_clip=config.relu_clip)
        self.fc5 = nn.Linear(config.hidden, config.hidden)
        self.output = nn.Linear(config.hidden, config.num_classes)
        self.dropout = nn.Dropout(config.dropout)

    def layers(self) -> dict[str, nn.Module]:
        """The six weight layers in the order of Table 6 (for parameter reports)."""
        return {
            "layer1": self.fc1,
            "layer2": self.fc2,
            "layer3": self.fc3,
            "layer4": self.birnn,
            "layer5": self.fc5,
            "output": self.output,
        }

    def output_lengths(self, feature_lengths: Tensor) -> Tensor:
        """One output frame per input frame (no striding in DeepSpeech 1)."""
        return feature_lengths.clone().long()

    def _clipped_relu(self, x: Tensor) -> Tensor:
        return torch.clamp(x, 0.0, self.config.relu_clip)

    def forward(self, features: Tensor, feature_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``features[B, T, F]``, ``feature_lengths[B]`` -> ``(log_probs[B, T, C], output_lengths[B])``."""
        if features.dim() != 3 or features.shape[-1] != self.config.num_features:
            expected = f"[B, T, {self.config.num_features}]"
            raise ValueError(f"DeepSpeech1 expects features {expected}, got {tuple(features.shape)}")
        check_lengths(feature_lengths, features.shape[0], features.shape[1], "DeepSpeech1")
        valid = valid_mask(feature_lengths, features.shape[1], features.device)
        x = features * valid.unsqueeze(-1).to(features.dtype)  # padding must look like the zero edge
        x = stack_context(x, self.config.context)
        x = self.dropout(self._clipped_relu(self.fc1(x)))
        x = self.dropout(self._clipped_relu(self.fc2(x)))
        x = self.dropout(self._clipped_relu(self.fc3(x)))
        x = self.birnn(x, feature_lengths)
        x = self.dropout(self._clipped_relu(self.fc5(x)))
        log_probs = F.log_softmax(self.output(x), dim=-1)
        return log_probs, self.output_lengths(feature_lengths)
