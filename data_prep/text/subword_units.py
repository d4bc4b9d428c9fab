"""SentencePiece output units (BPE or unigram), an alternative to DeepSpeech's characters.

Why: subword units shorten the label sequences (fewer CTC/transducer steps per word) and let the model
spell frequent words in one piece. The unit model is trained once on the training transcripts, as kept
in the training feature store (so it sees exactly the normalised text the labels come from; the stage is
``python -m data_prep.features.learn_units``), and saved as a ``.model`` file that the task names in
``task_args.units``. Index 0 stays the CTC/transducer blank: SentencePiece piece ``p`` is class ``p + 1``. Word error rates are always computed on the decoded words.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from dsd_seq.safe_io import write_atomic

UNIT_TYPES = ("bpe", "unigram")


class SubwordUnitsError(ValueError):
    """A unit model cannot be trained or loaded; the message says what to change."""


class SentencePieceVocab:
    """Encode/decode text with a SentencePiece model, shifted by one so that index 0 is the blank."""

    def __init__(self, model_proto: bytes, source: str = "<memory>") -> None:
        self.source = source
        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def load(cls, path: str | Path) -> SentencePieceVocab:
        path = Path(path)
        if not path.is_file():
            raise SubwordUnitsError(
                f"task_args.units: {path} does not exist; train it with `python -m data_prep.features.learn_units "
                f"--store data/feats/train --type bpe --vocab-size N --out {path}` "
                "(egs/synth_speech/run.sh --units bpe does this in stage 1)"
            )
        try:
            return cls(path.read_bytes(), str(path))
        except RuntimeError as err:
            raise SubwordUnitsError(f"{path}: not a SentencePiece model ({err}); train it again") from err

    @property
    def blank(self) -> int:
        return 0

    @property
    def symbols(self) -> list[str]:
        """Every class by index: '' for the blank, then the pieces (``▁`` marks a word start)."""
        return ["", *(self._sp.id_to_piece(i) for i in range(self._sp.vocab_size()))]

    def __len__(self) -> int:
        return self._sp.vocab_size() + 1

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self._sp.encode(text)]

    def pieces(self, word: str) -> list[str]:
        """How a word is spelled in pieces (for a decoder's lexicon)."""
        return self._sp.encode(word, out_type=str)

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids``; blanks are dropped."""
        return self._sp.decode([int(i) - 1 for i in ids if int(i) > 0])


def train_units(
    texts: Iterable[str], out_path: str | Path, unit_type: str = "bpe", vocab_size: int = 100
) -> SentencePieceVocab:
    """Train a SentencePiece model on ``texts`` and write it atomically to ``out_path``."""
    if unit_type not in UNIT_TYPES:
        raise SubwordUnitsError(f"unit type {unit_type!r}; accepted: {', '.join(UNIT_TYPES)}")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise SubwordUnitsError("no training transcripts to learn units from; build the train store first")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=model,
            model_type=unit_type,
            vocab_size=vocab_size,
            character_coverage=1.0,  # every training character stays spellable
            bos_id=-1,
            eos_id=-1,
            minloglevel=2,
        )
    except RuntimeError as err:
        reason = str(err).split("]")[-1].strip()
        raise SubwordUnitsError(
            f"SentencePiece cannot learn {vocab_size} {unit_type} units from {len(texts)} transcripts: "
            f"{reason} Choose another --vocab-size"
        ) from err
    write_atomic(Path(out_path), model.getvalue())
    return SentencePieceVocab(model.getvalue(), str(out_path))
