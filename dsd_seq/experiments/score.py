"""Scoring a hypothesis file against a reference file, as Kaldi's ``compute-wer`` does.

Why a file-level scorer: decoding writes ``<utt-id> word word ...`` lines (Kaldi's ``text`` format), so a
result can be re-scored, diffed and compared with any other toolkit's output without re-running a model.
The printed lines follow compute-wer (``%WER 12.34 [ 56 / 454, 10 ins, 20 del, 26 sub ]`` and ``%SER``),
so scripts that parse Kaldi results read ours too. Error rates are corpus-level: total edits over total
reference words (or characters with ``--cer``; spaces count, as in :mod:`models.scoring`).

Modes, as in compute-wer: ``strict`` needs the same utterance ids in both files; ``present`` scores only
the utterances the hypothesis file has; ``all`` scores every reference, a missing hypothesis counting as
empty. A hypothesis id absent from the reference is an error in every mode: it means the files do not
belong together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MODES = ("strict", "present", "all")


class ScoreError(ValueError):
    """A reference or hypothesis file that cannot be scored; the message names the file and line."""


@dataclass(frozen=True)
class ScoreResult:
    """Corpus edit counts and sentence errors of one scoring."""

    unit: str  # "word" or "char"
    insertions: int
    deletions: int
    substitutions: int
    reference_length: int
    sentences: int
    sentence_errors: int
    missing: int  # references with no hypothesis line (scored as empty in mode "all")

    @property
    def errors(self) -> int:
        return self.insertions + self.deletions + self.substitutions

    @property
    def rate(self) -> float:
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


def _edits(reference: str, hypothesis: str, unit: str) -> tuple[int, int, int, int]:
    """(insertions, deletions, substitutions, reference length) of one utterance."""
    ref_tokens = reference.split() if unit == "word" else list(reference)
    hyp_tokens = hypothesis.split() if unit == "word" else list(hypothesis)
    import jiwer  # here, not at the top: every dsd-seq command imports this module

    if not ref_tokens:  # jiwer refuses empty references; every hypothesis token is then an insertion
        return len(hyp_tokens), 0, 0, 0
    if not hyp_tokens:
        return 0, len(ref_tokens), 0, len(ref_tokens)
    out = (
        jiwer.process_words(reference, hypothesis)
        if unit == "word"
        else jiwer.process_characters(reference, hypothesis)
    )
    return out.insertions, out.deletions, out.substitutions, len(ref_tokens)


def score(
    references: dict[str, str], hypotheses: dict[str, str], mode: str = "strict", unit: str = "word",
    ref_name: str = "reference", hyp_name: str = "hypothesis",
) -> ScoreResult:  # fmt: skip
    """Score ``hypotheses`` against ``references`` (both utt-id -> text) in compute-wer's ``mode``."""
    if mode not in MODES:
        raise ScoreError(f"mode {mode!r}; accepted: {', '.join(MODES)}")
    if unit not in ("word", "char"):
        raise ScoreError(f"unit {unit!r}; accepted: word, char")
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
    ins = dels = subs = length = sentence_errors = 0
    for utt in scored:
        i, d, s, n = _edits(references[utt], hypotheses.get(utt, ""), unit)
        ins, dels, subs, length = ins + i, dels + d, subs + s, length + n
        sentence_errors += references[utt] != hypotheses.get(utt, "")
    if not scored:
        raise ScoreError(f"{hyp_name}: no utterance in common with {ref_name}; nothing to score")
    if length == 0:
        raise ScoreError(f"{ref_name}: every scored reference is empty; an error rate needs reference words")
    return ScoreResult(unit, ins, dels, subs, length, len(scored), sentence_errors, len(missing))


def score_files(
    ref: str | os.PathLike, hyp: str | os.PathLike, mode: str = "strict", unit: str = "word"
) -> ScoreResult:
    """:func:`score` of two Kaldi text files."""
    return score(
        read_text_file(ref, "reference"), read_text_file(hyp, "hypothesis"), mode, unit, str(ref), str(hyp)
    )
