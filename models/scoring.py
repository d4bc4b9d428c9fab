"""Word and character error rates, corpus-level, as the DSD paper reports them (percent, Table 7).

Corpus-level means total edits over total reference words (or characters), not a mean of per-utterance
rates. jiwer does the alignment; an empty hypothesis counts as deleting every reference word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCounts:
    """Edit counts of an alignment; ``rate`` is (S + D + I) / (S + D + hits) in percent."""

    substitutions: int
    deletions: int
    insertions: int
    hits: int

    @property
    def reference_length(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def rate(self) -> float:
        return 100.0 * (self.substitutions + self.deletions + self.insertions) / self.reference_length


def _check(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no utterances to score")
    if not any(r.strip() for r in references):
        raise ValueError("every reference is empty; an error rate needs at least one reference word")
    return list(references), list(hypotheses)


def error_counts(references: Sequence[str], hypotheses: Sequence[str], unit: str = "word") -> ErrorCounts:
    """Substitutions, deletions, insertions and hits over the corpus; ``unit`` is "word" or "char"."""
    import jiwer  # imported here: the models (and the GPU benchmarks) load without it

    references, hypotheses = _check(references, hypotheses)
    if unit == "word":
        out = jiwer.process_words(references, hypotheses)
    elif unit == "char":
        out = jiwer.process_characters(references, hypotheses)
    else:
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, out.hits)


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate in percent (0-100, can exceed 100 with many insertions)."""
    return error_counts(references, hypotheses, "word").rate


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus character error rate in percent; spaces count as characters."""
    return error_counts(references, hypotheses, "char").rate
