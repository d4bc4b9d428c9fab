"""Word and character error rates, corpus-level, of transcripts in memory or in Kaldi text files.

One scorer serves both callers: a task's evaluation passes lists of references and hypotheses
(:func:`wer`, :func:`cer`, :func:`error_counts`); ``dsd-seq score`` passes two files (:func:`score_files`).
Both return :class:`ErrorCounts`, so a rate printed by training and one printed by ``dsd-seq score`` of the
decoded files are the same number.

Rates are corpus-level, in percent, as the DSD paper reports them (Table 7): total edits over total
reference words (or characters; spaces count), not a mean of per-utterance rates. jiwer does the
alignment; an empty hypothesis deletes every reference word, and the words of a hypothesis whose
reference is empty are all insertions.

Why a file-level scorer: decoding writes ``<utt-id> word word ...`` lines (Kaldi's ``text`` format), so a
result can be re-scored, diffed and compared with any other toolkit's output without re-running a model.
The printed lines follow compute-wer (``%WER 12.34 [ 56 / 454, 10 ins, 20 del, 26 sub ]`` and ``%SER``),
so scripts that parse Kaldi results read ours too.

Modes, as in compute-wer: ``strict`` needs the same utterance ids in both files; ``present`` scores only
the utterances the hypothesis file has; ``all`` scores every reference, a missing hypothesis counting as
empty. A hypothesis id absent from the reference is an error in every mode: it means the files do not
belong together.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MODES = ("strict", "present", "all")
UNITS = ("word", "char")


class ScoreError(ValueError):
    """Transcripts that cannot be scored; the message names the file (and line) or what is wrong."""


@dataclass(frozen=True)
class ErrorCounts:
    """Corpus edit counts of one scoring; ``rate`` is (S + D + I) / (S + D + hits) in percent."""

    substitutions: int
    deletions: int
    insertions: int
    hits: int
    sentences: int = 0
    sentence_errors: int = 0  # utterances with at least one edit
    missing: int = 0  # references with no hypothesis line (scored as empty in mode "all")
    unit: str = "word"  # "word" or "char"

    @property
    def reference_length(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Percent, 0-100; more than 100 when there are many insertions."""
        return 100.0 * self.errors / self.reference_length

    @property
    def sentence_error_rate(self) -> float:
        return 100.0 * self.sentence_errors / self.sentences

    def kaldi_lines(self) -> list[str]:
        """compute-wer's summary lines (``%CER`` instead of ``%WER`` when scoring characters)."""
        name = "%WER" if self.unit == "word" else "%CER"
        return [
            f"{name} {self.rate:.2f} [ {self.errors} / {self.reference_length}, {self.insertions} ins, "
            f"{self.deletions} del, {self.substitutions} sub ]",
            f"%SER {self.sentence_error_rate:.2f} [ {self.sentence_errors} / {self.sentences} ]",
            f"Scored {self.sentences} sentences, {self.missing} not present in hyp.",
        ]


def error_counts(references: Sequence[str], hypotheses: Sequence[str], unit: str = "word") -> ErrorCounts:
    """Edit counts over the corpus of aligned ``references`` and ``hypotheses``; ``unit``: "word" or "char"."""
    if unit not in UNITS:
        raise ScoreError(f"unit must be 'word' or 'char', got {unit!r}")
    if len(references) != len(hypotheses):
        raise ScoreError(f"got {len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ScoreError("no utterances to score")
    if not any(r.strip() for r in references):
        raise ScoreError("every reference is empty; an error rate needs at least one reference word")
    import jiwer  # here, not at the top: every dsd-seq command imports this package

    align = jiwer.process_words if unit == "word" else jiwer.process_characters
    # jiwer 3 refuses empty references, so those pairs are counted here: every hypothesis token is an
    # insertion (tokens as jiwer's default transforms make them: words, or characters once stripped).
    scorable = [i for i, ref in enumerate(references) if ref.strip()]
    inserted = [
        len(hypotheses[i].split() if unit == "word" else hypotheses[i].strip())
        for i, ref in enumerate(references)
        if not ref.strip()
    ]
    out = align([references[i] for i in scorable], [hypotheses[i] for i in scorable])
    edited = sum(any(chunk.type != "equal" for chunk in chunks) for chunks in out.alignments)
    return ErrorCounts(
        substitutions=out.substitutions,
        deletions=out.deletions,
        insertions=out.insertions + sum(inserted),
        hits=out.hits,
        sentences=len(references),
        sentence_errors=edited + sum(n > 0 for n in inserted),
        unit=unit,
    )


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate in percent (0-100, can exceed 100 with many insertions)."""
    return error_counts(references, hypotheses, "word").rate


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus character error rate in percent; spaces count as characters."""
    return error_counts(references, hypotheses, "char").rate


def read_text_file(path: str | os.PathLike, what: str) -> dict[str, str]:
    """``utt-id -> transcript`` of a Kaldi text file (id and words separated by any whitespace, tabs
    too); duplicate ids, blank lines and bytes that are not UTF-8 are errors naming the line."""
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"{what} file {path} not found")
    table: dict[str, str] = {}
    lines: dict[str, int] = {}
    with path.open("rb") as f:
        for lineno, raw_bytes in enumerate(f, start=1):
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ScoreError(
                    f"{path}:{lineno}: not UTF-8 (byte 0x{raw_bytes[err.start]:02x} at column "
                    f"{err.start + 1}); convert the {what} file to UTF-8, e.g. `iconv -f latin1 -t utf-8`"
                ) from None
            # the id ends at the first run of any whitespace (a tab too), as compute-wer reads it
            fields = raw.strip(" \t\r\n\f\v").split(None, 1)
            if not fields:
                raise ScoreError(f"{path}:{lineno}: empty line; every line is '<utt-id> [words...]'")
            utt, text = fields[0], fields[1] if len(fields) > 1 else ""
            if utt in table:
                raise ScoreError(
                    f"{path}:{lineno}: utterance {utt!r} appears twice (first on line {lines[utt]}); "
                    f"each utterance needs exactly one {what} line"
                )
            table[utt] = " ".join(text.split())
            lines[utt] = lineno
    if not table:
        raise ScoreError(f"{what} file {path} is empty")
    return table


def score(
    references: dict[str, str], hypotheses: dict[str, str], mode: str = "strict", unit: str = "word",
    ref_name: str = "reference", hyp_name: str = "hypothesis",
) -> ErrorCounts:  # fmt: skip
    """Score ``hypotheses`` against ``references`` (both utt-id -> text) in compute-wer's ``mode``."""
    if mode not in MODES:
        raise ScoreError(f"mode {mode!r}; accepted: {', '.join(MODES)}")
    if unit not in UNITS:
        raise ScoreError(f"unit {unit!r}; accepted: {', '.join(UNITS)}")
    extra = [utt for utt in hypotheses if utt not in references]
    if extra:
        raise ScoreError(
            f"{hyp_name}: {len(extra)} utterance(s) not in {ref_name}, e.g. {extra[:3]}; are these the "
            "hypotheses of another data set?"
        )
    missing = [utt for utt in references if utt not in hypotheses]
    if missing and mode == "strict":
        raise ScoreError(
            f"{hyp_name}: no hypothesis for {len(missing)} of {len(references)} reference utterance(s), "
            f"e.g. {missing[:3]}; decode them, or pass --mode present (score only those decoded) or "
            "--mode all (count them as empty)"
        )
    scored = [utt for utt in references if utt in hypotheses or mode == "all"]
    if not scored:
        raise ScoreError(f"{hyp_name}: no utterance in common with {ref_name}; nothing to score")
    if not any(references[utt] for utt in scored):
        raise ScoreError(f"{ref_name}: every scored reference is empty; an error rate needs reference words")
    counts = error_counts([references[u] for u in scored], [hypotheses.get(u, "") for u in scored], unit)
    return dataclasses.replace(counts, missing=len(missing))


def score_files(
    ref: str | os.PathLike, hyp: str | os.PathLike, mode: str = "strict", unit: str = "word"
) -> ErrorCounts:
    """:func:`score` of two Kaldi text files."""
    return score(
        read_text_file(ref, "reference"), read_text_file(hyp, "hypothesis"), mode, unit, str(ref), str(hyp)
    )
