"""The character vocabulary of DeepSpeech: CTC blank, space, apostrophe and a-z (29 symbols).

DeepSpeech 1 and 2 predict characters, so the output layer has 29 units (the 29,725 parameters of
DeepSpeech1's last layer in Table 6 are 1024*29 + 29). Index 0 is the CTC blank, as
``torch.nn.CTCLoss(blank=0)`` expects.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

_WHITESPACE = re.compile(r"\s+")


class OutOfVocabularyError(ValueError):
    """A transcript holds characters the vocabulary cannot encode."""

    def __init__(self, text: str, chars: set[str]) -> None:
        self.text = text
        self.chars = chars
        shown = ", ".join(repr(c) for c in sorted(chars))
        super().__init__(
            f"characters not in the vocabulary: {shown} in {text!r}; "
            "normalise the transcript (spell out numbers and symbols) or drop the utterance"
        )


@dataclass(frozen=True)
class CharVocab:
    """Characters by index; ``symbols[0]`` is the CTC blank, printed as the empty string."""

    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.symbols or self.symbols[0] != "":
            raise ValueError("CharVocab: symbols[0] must be the blank ''")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"CharVocab: duplicate symbols in {self.symbols!r}")
        if any(len(s) != 1 for s in self.symbols[1:]):
            raise ValueError("CharVocab: every symbol after the blank must be one character")
        object.__setattr__(self, "_index", {s: i for i, s in enumerate(self.symbols) if i > 0})

    @classmethod
    def default(cls) -> CharVocab:
        """DeepSpeech's 29 symbols: blank, space, apostrophe, a-z."""
        return cls(("", " ", "'", *string.ascii_lowercase))

    @property
    def blank(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.symbols)

    @staticmethod
    def normalize(text: str) -> str:
        """Lowercase, collapse whitespace, strip. Unknown characters are kept so they can be reported."""
        return _WHITESPACE.sub(" ", text.lower()).strip()

    def unknown_chars(self, text: str) -> set[str]:
        return {c for c in text if c not in self._index}

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` (already normalised); raises OutOfVocabularyError naming unknown characters."""
        unknown = self.unknown_chars(text)
        if unknown:
            raise OutOfVocabularyError(text, unknown)
        return [self._index[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Characters of ``ids``; blanks print as nothing (CTC collapsing is the decoder's job)."""
        return "".join(self.symbols[int(i)] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": "char", "symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, data: dict) -> CharVocab:
        if data.get("kind") != "char" or "symbols" not in data:
            raise ValueError(
                f"not a saved CharVocab (expected kind 'char' and 'symbols'): keys {sorted(data)}"
            )
        return cls(tuple(data["symbols"]))
