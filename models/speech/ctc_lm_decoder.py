"""CTC beam search with an n-gram word language model, through torchaudio's flashlight decoder.

Why a maintained decoder: a lexicon-constrained beam search with a KenLM model is a well-tested piece of
C++ (flashlight-text); ours would be slower and less trusted. It is optional (``pip install -e ".[lm]"``);
the language model is an ARPA file or a KenLM binary. The lexicon holds the words of the training
transcripts, each spelled in the model's units (characters end with the word separator ``|``; SentencePiece
words are their pieces, and the blank doubles as the silence token between them, as in fairseq).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from data_prep.text.subword_units import SentencePieceVocab
from data_prep.text.vocab import CharVocab

BLANK_TOKEN = "<blank>"
WORD_SEPARATOR = "|"


class LanguageModelDecoderError(ValueError):
    """The LM decoder cannot be built (package missing, LM file missing or unreadable)."""


def _tokens_and_spelling(vocab: CharVocab | SentencePieceVocab):
    """The decoder's token names by class index, its silence token, and how a word is spelled."""
    if isinstance(vocab, SentencePieceVocab):
        return [BLANK_TOKEN, *vocab.symbols[1:]], BLANK_TOKEN, vocab.pieces
    tokens = [BLANK_TOKEN, *(WORD_SEPARATOR if s == " " else s for s in vocab.symbols[1:])]
    return tokens, WORD_SEPARATOR, lambda word: [*word, WORD_SEPARATOR]


class LMDecoder:
    """Decode ``log_probs[B, T, C]`` into word strings with a lexicon and an n-gram LM."""

    def __init__(
        self,
        vocab: CharVocab | SentencePieceVocab,
        words: Iterable[str],
        lm_path: str | Path,
        beam_size: int = 16,
        lm_weight: float = 0.5,
        word_score: float = 0.0,
    ) -> None:
        try:
            from torchaudio.models.decoder import ctc_decoder
        except ImportError as err:
            raise LanguageModelDecoderError(
                f"decoding with a language model needs flashlight-text: pip install -e '.[lm]' ({err})"
            ) from None
        lm_path = Path(lm_path)
        if not lm_path.is_file():
            raise LanguageModelDecoderError(
                f"task_args.decoding.lm: {lm_path} does not exist; give an ARPA file or a KenLM binary"
            )
        tokens, silence, spell = _tokens_and_spelling(vocab)
        known = set(tokens)
        lines = []
        for word in sorted(set(words)):
            pieces = spell(word)
            if word and all(p in known for p in pieces):
                lines.append(f"{word} {' '.join(pieces)}")
        with tempfile.TemporaryDirectory() as folder:
            lexicon = Path(folder) / "lexicon.txt"
            lexicon.write_text("\n".join(lines) + "\n", encoding="utf-8")
            try:
                self._decode = ctc_decoder(
                    lexicon=str(lexicon),
                    tokens=tokens,
                    lm=str(lm_path),
                    nbest=1,
                    beam_size=beam_size,
                    lm_weight=lm_weight,
                    word_score=word_score,
                    blank_token=BLANK_TOKEN,
                    sil_token=silence,
                    unk_word="<unk>",
                )
            except RuntimeError as err:
                raise LanguageModelDecoderError(
                    f"{lm_path}: the language model cannot be loaded ({err}); give an ARPA file or a KenLM binary"
                ) from err
        self.lexicon_size = len(lines)

    def __call__(self, log_probs: Tensor, output_lengths: Tensor) -> list[str]:
        emissions = log_probs.detach().float().cpu().contiguous()
        results = self._decode(emissions, output_lengths.detach().cpu().to(torch.int32))
        return [" ".join(w for w in hyps[0].words if w) if hyps else "" for hyps in results]
