"""Kaldi-style data directories: ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``.

Why Kaldi's format: every speech toolkit reads it, a person can inspect it with ``head`` and fix it with
``sed``, and recipes can leave each stage's result on disk. Each file holds ``<utt_id> <value>`` lines
sorted by utterance id. Reading validates the directory and names the file and line of any problem,
because a silent mismatch between ``wav.scp`` and ``text`` trains a model on the wrong labels.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dsd_seq.safe_io import write_atomic

REQUIRED_FILES = ("wav.scp", "text", "utt2spk")


class DataDirError(ValueError):
    """A data directory is missing a file or has an inconsistent or malformed line."""


@dataclass
class Utterance:
    """One recording and its transcript; ``speaker`` groups utterances for per-speaker splits and stats."""

    utt_id: str
    wav_path: Path
    text: str
    speaker: str


def write_data_dir(path: str | os.PathLike, utterances: Iterable[Utterance]) -> Path:
    """Write the four files, sorted by utterance id, with absolute wav paths. Returns the directory."""
    out = Path(path)
    utts = sorted(utterances, key=lambda u: u.utt_id)
    seen: set[str] = set()
    for u in utts:
        if not u.utt_id or any(c.isspace() for c in u.utt_id):
            raise DataDirError(f"{out}: utterance id {u.utt_id!r} is empty or contains whitespace; rename it")
        if not u.speaker or any(c.isspace() for c in u.speaker):
            raise DataDirError(f"{out}: speaker {u.speaker!r} of {u.utt_id} is empty or has whitespace")
        if u.utt_id in seen:
            raise DataDirError(f"{out}: utterance id {u.utt_id} appears twice; utterance ids must be unique")
        seen.add(u.utt_id)
    out.mkdir(parents=True, exist_ok=True)
    spk2utt: dict[str, list[str]] = {}
    for u in utts:
        spk2utt.setdefault(u.speaker, []).append(u.utt_id)
    files = {
        "wav.scp": [f"{u.utt_id} {Path(u.wav_path).absolute()}" for u in utts],
        "text": [f"{u.utt_id} {u.text}".rstrip() for u in utts],
        "utt2spk": [f"{u.utt_id} {u.speaker}" for u in utts],
        "spk2utt": [f"{spk} {' '.join(ids)}" for spk, ids in sorted(spk2utt.items())],
    }
    for name, lines in files.items():
        write_atomic(out / name, "".join(line + "\n" for line in lines).encode("utf-8"))
    return out


#: What Kaldi counts as whitespace between the id and the rest of a line (C ``isspace``), so that a
#: tab-separated file reads as Kaldi reads it.
KALDI_WHITESPACE = " \t\r\n\f\v"


def split_kaldi_line(line: str) -> tuple[str, str]:
    """``(id, rest)`` of a ``<id> <value>`` line: the id ends at the first run of any whitespace."""
    line = line.strip(KALDI_WHITESPACE)
    for index, char in enumerate(line):
        if char in KALDI_WHITESPACE:
            return line[:index], line[index:].strip(KALDI_WHITESPACE)
    return line, ""


def _decode_line(path: Path, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataDirError(
            f"{path}:{lineno}: not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
            "convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def _read_table(
    path: Path, value_required: bool, duplicates: dict[str, str] | None = None
) -> tuple[dict[str, str], dict[str, int]]:
    """Map utt id -> value and utt id -> line number, rejecting (if asked) empty values and duplicates;
    with a ``duplicates`` dict, a repeated id is recorded there (id -> message) instead of raised."""
    if not path.is_file():
        raise DataDirError(
            f"{path}: missing; a data dir needs {', '.join(REQUIRED_FILES)} (spk2utt optional). "
            "Re-run the data preparation stage that writes it"
        )
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = _decode_line(path, lineno, raw)
            if not line.strip(KALDI_WHITESPACE):
                raise DataDirError(f"{path}:{lineno}: empty line; delete it")
            key, value = split_kaldi_line(line)
            if value_required and not value:
                raise DataDirError(
                    f"{path}:{lineno}: line for {key!r} has no value; expected '<id> <value>'. "
                    "Fix or delete the line"
                )
            if key in values:
                message = (
                    f"{path}:{lineno}: duplicate id {key!r} (first on line {lines[key]}); ids must be unique"
                )
                if duplicates is None:
                    raise DataDirError(message)
                duplicates.setdefault(key, message)
                continue
            values[key] = value
            lines[key] = lineno
    return values, lines


def _check_same_ids(a_name: str, a: dict[str, int], b_name: str, b: dict[str, int], data_dir: Path) -> None:
    """Ids present in one file and not in the other: name the first by line so a person can look at it."""
    only_a = sorted(set(a) - set(b), key=a.__getitem__)
    only_b = sorted(set(b) - set(a), key=b.__getitem__)
    if only_a or only_b:
        first_file, first_line, first_id, other = (
            (a_name, a[only_a[0]], only_a[0], b_name) if only_a else (b_name, b[only_b[0]], only_b[0], a_name)
        )
        raise DataDirError(
            f"{data_dir / first_file}:{first_line}: utterance {first_id!r} is not in {other} "
            f"({len(only_a)} ids only in {a_name}, {len(only_b)} only in {b_name}); "
            "every utterance needs a line in each file: regenerate the data dir or remove the extra lines"
        )


def read_data_dir(path: str | os.PathLike, duplicates: dict[str, str] | None = None) -> list[Utterance]:
    """Read and validate a data dir; returns utterances sorted by id. Empty transcripts are kept as ''.

    Relative wav paths resolve against the current working directory, as in Kaldi. A repeated utterance
    id is an error, unless a ``duplicates`` dict is given: then every line of such an id is left out (which
    one is right cannot be known) and the id is recorded there with a message naming file and line.
    """
    data_dir = Path(path)
    if not data_dir.is_dir():
        raise DataDirError(
            f"{data_dir}: not a directory; pass a Kaldi data dir holding wav.scp, text, utt2spk"
        )
    wavs, wav_lines = _read_table(data_dir / "wav.scp", value_required=True, duplicates=duplicates)
    texts, text_lines = _read_table(data_dir / "text", value_required=False, duplicates=duplicates)
    spks, spk_lines = _read_table(data_dir / "utt2spk", value_required=True, duplicates=duplicates)
    for table in (wavs, wav_lines, texts, text_lines, spks, spk_lines):
        for utt in duplicates or ():
            table.pop(utt, None)
    for utt, wav in wavs.items():
        if wav.endswith("|"):
            raise DataDirError(
                f"{data_dir / 'wav.scp'}:{wav_lines[utt]}: {utt!r} is a piped command; dsd-seq reads audio "
                "files only: convert the audio to wav files and list their paths"
            )
    _check_same_ids("wav.scp", wav_lines, "text", text_lines, data_dir)
    _check_same_ids("wav.scp", wav_lines, "utt2spk", spk_lines, data_dir)
    for utt, spk in spks.items():
        if any(char in KALDI_WHITESPACE for char in spk):
            raise DataDirError(
                f"{data_dir / 'utt2spk'}:{spk_lines[utt]}: speaker of {utt!r} is {spk!r}; "
                "one speaker id per line"
            )

    spk2utt_path = data_dir / "spk2utt"
    if spk2utt_path.exists():
        listed, spk2utt_lines = _read_table(spk2utt_path, value_required=True)
        seen: dict[str, str] = {}
        for spk, ids in listed.items():
            for utt in ids.split():
                if duplicates and utt in duplicates:
                    continue
                where = f"{spk2utt_path}:{spk2utt_lines[spk]}"
                fix = "regenerate spk2utt from utt2spk (utils/utt2spk_to_spk2utt.pl or write_data_dir)"
                if utt in seen:
                    raise DataDirError(
                        f"{where}: utterance {utt!r} listed twice (also under {seen[utt]!r}); {fix}"
                    )
                seen[utt] = spk
                if spks.get(utt) != spk:
                    raise DataDirError(
                        f"{where}: lists {utt!r} under speaker {spk!r} but utt2spk says "
                        f"{spks.get(utt, '<absent>')!r}; {fix}"
                    )
        missing = sorted(set(spks) - set(seen), key=spk_lines.__getitem__)
        if missing:
            raise DataDirError(
                f"{data_dir / 'utt2spk'}:{spk_lines[missing[0]]}: utterance {missing[0]!r} is not listed in "
                f"spk2utt ({len(missing)} missing); regenerate spk2utt from utt2spk"
            )

    return [Utterance(utt, Path(wavs[utt]), texts[utt], spks[utt]) for utt in sorted(wavs)]
