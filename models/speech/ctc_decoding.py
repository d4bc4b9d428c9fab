"""How a CTC model's output becomes words: greedy (the paper's max decoding), prefix beam search, or beam
search with an n-gram language model. Chosen in ``task_args.decoding`` or per call of
``SpeechTask.evaluate(split, device, decoding)``; greedy is the default, as the paper scores it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import Tensor

from data_prep.text.subword_units import SentencePieceVocab
from data_prep.text.vocab import CharVocab
from models.speech.ctc import greedy_decode
from models.speech.ctc_beam_search import beam_decode

DECODING_MODES = ("greedy", "beam", "lm")


@dataclass
class DecodingConfig:
    mode: str = "greedy"  # greedy | beam (prefix beam search) | lm (beam search + n-gram LM, extra [lm])
    beam_size: int = 8
    lm: str = ""  # mode lm: an ARPA file or a KenLM binary
    lm_weight: float = 0.5
    word_score: float = 0.0  # mode lm: added per word (positive favours more words)

    def __post_init__(self) -> None:
        if self.mode not in DECODING_MODES:
            raise ValueError(f"task_args.decoding.mode={self.mode!r}; accepted: {', '.join(DECODING_MODES)}")
        if self.beam_size < 1:
            raise ValueError(f"task_args.decoding.beam_size={self.beam_size}; must be >= 1")
        if self.mode == "lm" and not self.lm:
            raise ValueError("task_args.decoding.mode=lm needs task_args.decoding.lm (an ARPA or KenLM file)")


def ctc_text_decoder(
    config: DecodingConfig, vocab: CharVocab | SentencePieceVocab, words: Iterable[str]
) -> Callable[[Tensor, Tensor], list[str]]:
    """A function ``(log_probs[B, T, C], output_lengths[B]) -> texts``; ``words`` form the LM's lexicon."""
    if config.mode == "greedy":
        return lambda log_probs, lengths: [vocab.decode(s) for s in greedy_decode(log_probs, lengths)]
    if config.mode == "beam":
        return lambda log_probs, lengths: [
            vocab.decode(s) for s in beam_decode(log_probs, lengths, config.beam_size)
        ]
    from models.speech.ctc_lm_decoder import LMDecoder  # needs the optional flashlight-text package

    return LMDecoder(vocab, words, config.lm, config.beam_size, config.lm_weight, config.word_score)
