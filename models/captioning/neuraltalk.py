"""NeuralTalk (Karpathy & Fei-Fei 2015), the captioner of the DSD paper's Sec. 4.3 and Table 5.

A fixed CNN's image feature is projected linearly and fed to the LSTM as its first input; then <bos> and
the caption's words (teacher forcing) through a word embedding; an output FC layer predicts the next word.
DSD prunes the projection, the LSTM's matrices and the output FC (80% in Table 5), never the word
embedding (Ws), which :mod:`dsd_seq.core.selection` excludes by type.

The model keeps its vocabulary as a buffer, so a checkpoint loaded against data with another vocabulary is
refused with the first words that differ, instead of captioning with shuffled words.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

BOS, EOS = 1, 2


class VocabularyMismatchError(ValueError):
    """A checkpoint's vocabulary differs from the data's."""


@dataclass
class NeuralTalkConfig:
    feature_dim: int
    vocab_size: int
    embed_dim: int = 256
    hidden: int = 256
    layers: int = 1
    dropout: float = 0.0


class NeuralTalk(nn.Module):
    def __init__(self, config: NeuralTalkConfig, words: list[str] | None = None):
        super().__init__()
        self.config = config
        self.image_proj = nn.Linear(config.feature_dim, config.embed_dim)
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(config.embed_dim, config.hidden, config.layers, batch_first=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)  # fmt: skip
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden, config.vocab_size)
        vocab = "\n".join(words or []).encode("utf-8")
        self.register_buffer("vocab_bytes", torch.tensor(list(vocab), dtype=torch.uint8))

    @property
    def words(self) -> list[str]:
        return bytes(self.vocab_bytes.tolist()).decode("utf-8").split("\n") if len(self.vocab_bytes) else []

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "vocab_bytes"
        if key in state_dict and len(self.vocab_bytes) and not torch.equal(state_dict[key], self.vocab_bytes):
            theirs = bytes(state_dict[key].tolist()).decode("utf-8").split("\n")
            mine = self.words
            diff = next(
                (i for i, (a, b) in enumerate(zip(theirs, mine, strict=False)) if a != b),
                min(len(theirs), len(mine)),
            )
            raise VocabularyMismatchError(
                f"vocabulary mismatch: the checkpoint has {len(theirs)} words, the data {len(mine)}; first "
                f"difference at index {diff}: checkpoint {theirs[diff : diff + 3]} vs data {mine[diff : diff + 3]}. "
                "Use the data (and vocab_min_count) the checkpoint was trained on"
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def start(self, features: torch.Tensor):
        """Feed the image (step -1) and <bos>; returns the logits for the first word and the LSTM state."""
        _, state = self.lstm(self.drop(self.image_proj(features)).unsqueeze(1))
        bos = torch.full((features.shape[0], 1), BOS, dtype=torch.long, device=features.device)
        return self.step(bos, state)

    def step(self, tokens: torch.Tensor, state):
        """One word [B, 1] -> next-word logits [B, V] and the new state."""
        h, state = self.lstm(self.drop(self.embed(tokens)), state)
        return self.out(self.drop(h[:, -1])), state

    def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``tokens`` [B, T] starts with <bos>; returns logits [B, T, V], where position
        t predicts ``tokens[:, t + 1]`` (and the last position predicts <eos> or padding)."""
        image = self.image_proj(features).unsqueeze(1)
        x = self.drop(torch.cat([image, self.embed(tokens)], dim=1))
        h, _ = self.lstm(x)
        return self.out(self.drop(h[:, 1:]))

    @torch.no_grad()
    def greedy(self, features: torch.Tensor, max_length: int) -> list[list[int]]:
        """Most likely word at each step, for a batch; each caption stops at <eos> (not included)."""
        logits, state = self.start(features)
        out = [[] for _ in range(features.shape[0])]
        done = torch.zeros(features.shape[0], dtype=torch.bool, device=features.device)
        for _ in range(max_length):
            word = logits.argmax(-1)
            for i in torch.nonzero(~done).flatten().tolist():
                if word[i] == EOS:
                    done[i] = True
                else:
                    out[i].append(int(word[i]))
            if bool(done.all()):
                break
            logits, state = self.step(word.unsqueeze(1), state)
        return out

    @torch.no_grad()
    def beam_search(
        self, feature: torch.Tensor, beam_size: int, max_length: int, length_penalty: float = 0.0
    ) -> list[int]:
        """Beam search for one image ([D]). Finished captions are ranked by log-probability divided by
        ``length ** length_penalty`` (0: plain sum, which favours short captions; 1: mean per word).
        With ``beam_size`` 1 this is exactly greedy decoding."""
        logits, state = self.start(feature.unsqueeze(0))
        live = [([], 0.0)]
        finished: list[tuple[list[int], float]] = []
        for _ in range(max_length):
            log_probs = logits.log_softmax(-1)  # [len(live), V]
            totals = log_probs + torch.tensor([s for _, s in live], device=log_probs.device).unsqueeze(1)
            top = totals.flatten().topk(min(2 * beam_size, totals.numel()))
            new_live, parents, words = [], [], []
            for score, index in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                parent, word = divmod(index, totals.shape[1])
                if word == EOS:
                    finished.append((live[parent][0], score))
                elif len(new_live) < beam_size:
                    new_live.append((live[parent][0] + [word], score))
                    parents.append(parent)
                    words.append(word)
                if len(new_live) == beam_size:
                    break  # a caption ending below the kept live ones is not among the best beam_size
            if len(finished) >= beam_size or not new_live:
                break
            live = new_live
            index = torch.tensor(parents, device=feature.device)
            state = tuple(s[:, index] for s in state)
            logits, state = self.step(torch.tensor(words, device=feature.device).unsqueeze(1), state)
        candidates = finished or live

        def rank(item: tuple[list[int], float]) -> float:
            return item[1] / max(len(item[0]) + 1, 1) ** length_penalty

        return max(candidates, key=rank)[0]
