"""An RNN transducer (Graves 2012) on DeepSpeech 2's encoder: encoder, predictor, joiner.

Why: the transducer drops CTC's assumption that output labels are independent given the audio; its
predictor (an LSTM over the labels emitted so far) acts as an internal language model. DSD treats it like
any recurrent network: the encoder's recurrent and linear matrices, the predictor's LSTM and the joiner's
linear layers are prunable; the predictor's label embedding never is (``dsd_seq.core.selection`` excludes
embeddings by type, as the paper leaves NeuralTalk's word embedding dense).

The joiner combines every encoder frame with every predictor state,
``out(tanh(enc_proj(e_t) + pred_proj(p_u)))``, giving logits ``[B, T, U + 1, C]``; index 0 is the blank,
which also starts the predictor's input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from models.speech.deepspeech2 import DeepSpeech2, DeepSpeech2Config


@dataclass(frozen=True)
class TransducerConfig:
    """Sizes of the transducer; ``encoder`` holds DeepSpeech2Config fields (its defaults otherwise)."""

    num_features: int = 40
    num_classes: int = 29  # blank + units
    encoder: dict[str, Any] = field(default_factory=dict)
    embed_dim: int = 64  # predictor's label embedding
    predictor_hidden: int = 128
    predictor_layers: int = 1
    joiner_dim: int = 128
    max_symbols_per_frame: int = 5  # greedy decoding: labels emitted on one frame before moving on

    def __post_init__(self) -> None:
        for name in (
            "embed_dim",
            "predictor_hidden",
            "predictor_layers",
            "joiner_dim",
            "max_symbols_per_frame",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"TransducerConfig.{name}: must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise ValueError(f"TransducerConfig.num_classes: must be >= 2, got {self.num_classes}")
        if {"num_features", "num_classes"} & set(self.encoder):
            raise ValueError("TransducerConfig.encoder: num_features and num_classes are set by the task")


class Transducer(nn.Module):
    def __init__(self, config: TransducerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TransducerConfig()
        encoder_args = {
            k: tuple(map(_tuple, v)) if isinstance(v, list) else v for k, v in config.encoder.items()
        }
        self.encoder = DeepSpeech2(
            DeepSpeech2Config(**encoder_args, num_features=config.num_features, num_classes=0)
        )
        self.embedding = nn.Embedding(config.num_classes, config.embed_dim)
        self.predictor = nn.LSTM(
            config.embed_dim, config.predictor_hidden, config.predictor_layers, batch_first=True
        )
        self.enc_proj = nn.Linear(self.encoder.config.rnn_output_features, config.joiner_dim)
        self.pred_proj = nn.Linear(config.predictor_hidden, config.joiner_dim)
        self.joiner = nn.Linear(config.joiner_dim, config.num_classes)

    def output_lengths(self, feature_lengths: Tensor) -> Tensor:
        return self.encoder.output_lengths(feature_lengths)

    def predict(self, labels: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Predictor outputs ``[B, U, H]`` for label prefixes ``labels[B, U]`` (0, the blank, starts them)."""
        out, state = self.predictor(self.embedding(labels), state)
        return out, state

    def join(self, encoded: Tensor, predicted: Tensor) -> Tensor:
        """Logits for every (frame, label position): ``encoded[B, T, He]``, ``predicted[B, U, Hp]`` ->
        ``[B, T, U, C]``."""
        hidden = self.enc_proj(encoded).unsqueeze(2) + self.pred_proj(predicted).unsqueeze(1)
        return self.joiner(torch.tanh(hidden))

    def forward(self, features: Tensor, feature_lengths: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Joiner logits ``[B, T', L + 1, C]`` for ``labels[B, L]`` and the encoder's output lengths."""
        encoded, lengths = self.encoder.encode(features, feature_lengths)
        start = labels.new_zeros(labels.shape[0], 1)
        predicted, _ = self.predict(torch.cat([start, labels], dim=1))
        return self.join(encoded, predicted), lengths

    @torch.no_grad()
    def greedy_decode(self, features: Tensor, feature_lengths: Tensor) -> list[list[int]]:
        """Per frame, emit the likeliest label until the blank wins (at most ``max_symbols_per_frame``)."""
        encoded, lengths = self.encoder.encode(features, feature_lengths)
        results = []
        for b, length in enumerate(lengths.tolist()):
            emitted: list[int] = []
            last = torch.zeros(1, 1, dtype=torch.long, device=features.device)
            predicted, state = self.predict(last)
            for t in range(length):
                for _ in range(self.config.max_symbols_per_frame):
                    label = int(self.join(encoded[b : b + 1, t : t + 1], predicted).argmax(-1))
                    if label == 0:
                        break
                    emitted.append(label)
                    last.fill_(label)
                    predicted, state = self.predict(last, state)
            results.append(emitted)
        return results


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
