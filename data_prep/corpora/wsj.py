"""Wall Street Journal (WSJ0 LDC93S6B, WSJ1 LDC94S13B): the DSD paper's speech corpus, from your own copy.

The corpora are licensed, so nothing is downloaded: give the folders holding the discs as LDC ships them
(``11-13.1/wsj0/...``, ``13-34.1/wsj1/...``; a flat ``wsj0/``, ``wsj1/`` copy works too). The sets are the
ones Kaldi's ``wsj_data_prep.sh`` reads from the official index files (``.ndx``):

- ``train_si284``: ``wsj1/doc/indices/si_tr_s.ndx`` + ``wsj0/doc/indices/train/tr_s_wv1.ndx``, leaving out
  disc 11-2.1's speaker 401 as Kaldi does;
- ``test_dev93``: ``wsj1/doc/indices/h1_p0.ndx`` (Nov'93 dev, 503 utterances);
- ``test_eval92``: ``wsj0/doc/indices/test/nvp/si_et_20.ndx`` (Nov'92 eval, 333 utterances; its lines lack
  the ``.wv1`` extension).

Transcripts come from the ``.dot`` files (one per speaker session, lines ``text (utt-id)``) and are
normalised for DeepSpeech's character vocabulary (:func:`normalize_transcript`). Audio (``.wv1``, NIST
SPHERE) is converted to WAV by :mod:`data_prep.audio.sphere`. Disc and file names are matched without regard to
case: some discs were copied upper-cased.

Run: python -m data_prep.corpora.wsj --wsj0 DIR --wsj1 DIR --out DIR [--sets train_si284 test_dev93 test_eval92]
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from data_prep.audio.sphere import SphereError, sphere_to_wav
from data_prep.corpora.exit_status import exit_status
from data_prep.corpora.kaldi_dir import Utterance, write_data_dir

SETS: dict[str, tuple[str, ...]] = {
    "train_si284": ("wsj1/doc/indices/si_tr_s.ndx", "wsj0/doc/indices/train/tr_s_wv1.ndx"),
    "test_dev93": ("wsj1/doc/indices/h1_p0.ndx",),
    "test_eval92": ("wsj0/doc/indices/test/nvp/si_et_20.ndx",),
}
EXCLUDED = ("11-2.1/wsj0/si_tr_s/401/",)  # left out of training by Kaldi's wsj_data_prep.sh as well
_DISC = re.compile(r"^\d+[-_]\d+[._]\d+$")
_PUNCTUATION_WORD = re.compile(r"^[^\w\s']+([A-Za-z][A-Za-z-]*)$")  # ,COMMA .PERIOD "DOUBLE-QUOTE --DASH


class WsjError(ValueError):
    """The given folders are not a WSJ copy this preparation can read; the message says what is missing."""


def normalize_transcript(text: str) -> str:
    """A ``.dot`` transcript as lower-case words of DeepSpeech's characters (a-z, apostrophe, space).

    Following the WSJ transcription conventions (and the rules of Kaldi's normalize_transcript.pl, adapted
    to characters): noise markers (``[loud_breath]``, ``[<door_slam]``, ``[/phone_ring]``) are dropped,
    as are ``~`` (truncation) and a lone ``.`` (pause); ``<word>`` (a verbal deletion, still spoken) keeps
    the word; ``\\`` quoting, ``*`` (mispronounced) and ``:`` (lengthened sound) marks are removed;
    verbalised punctuation is spoken, so ``,COMMA`` becomes ``comma`` and ``"DOUBLE-QUOTE``
    ``double quote``; hyphens separate words, fragment hyphens (``shear-``) go; periods of abbreviations go.
    """
    words = []
    for word in text.split():
        if (word.startswith("[") and word.endswith("]")) or word in ("~", "."):
            continue
        if word.startswith("<") and word.endswith(">"):
            word = word[1:-1]
        word = word.replace("\\", "")
        match = _PUNCTUATION_WORD.match(word)
        if match:
            word = match.group(1)
        elif word.upper() in ("'SINGLE-QUOTE", "'QUOTE"):
            word = word[1:]
        word = re.sub(r"[*:@+]", "", word).replace("-", " ").lower()
        word = re.sub(r"[^a-z' ]", "", word)
        words.extend(word.split())
    return " ".join(words)


@functools.cache
def _listing(folder: Path) -> dict[str, str]:
    """Lower-cased name -> real name of a folder's entries (cached: ndx files list thousands)."""
    try:
        return {name.lower(): name for name in os.listdir(folder)}
    except (FileNotFoundError, NotADirectoryError):
        return {}


def _join(base: Path, relative: str) -> Path | None:
    """``base/relative`` matched case-insensitively component by component; None if absent."""
    path = base
    for part in relative.strip("/").split("/"):
        name = _listing(path).get(part.lower())
        if name is None:
            return None
        path = path / name
    return path


def find_discs(roots: list[Path]) -> dict[str, Path]:
    """Disc id (``11-13.1``) -> folder, for disc folders at a root, below it, or one level further down."""
    discs: dict[str, Path] = {}
    for root in roots:
        candidates = [root, *(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
        candidates += [p for c in candidates[1:] for p in c.iterdir() if p.is_dir()]
        for folder in candidates:
            if _DISC.match(folder.name):
                discs.setdefault(_disc_id(folder.name), folder)
    return discs


def _disc_id(name: str) -> str:
    """``11_13_1`` (as index files write it), ``11-13.1`` or ``11-13_1`` -> ``11-13.1``."""
    a, b, c = re.split(r"[-_.]", name)
    return f"{a}-{b}.{c}"


def _locate(roots: list[Path], discs: dict[str, Path], disc: str | None, relative: str) -> Path | None:
    bases = [discs[disc]] if disc and disc in discs else []
    bases += list(discs.values()) if disc is None else []
    bases += roots  # a flat copy (wsj0/, wsj1/ directly under a root)
    for base in bases:
        found = _join(base, relative)
        if found is not None and found.is_file():
            return found
    return None


def read_index(path: Path) -> list[tuple[str | None, str]]:
    """(disc id or None, path on the disc) of every audio file an ``.ndx`` lists (``;`` starts comments)."""
    entries = []
    for line in path.read_text(encoding="latin-1").splitlines():
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        disc, sep, relative = line.partition(":")
        if not sep:
            disc, relative = "", line
        relative = relative.strip().lstrip("/")
        if not relative.lower().endswith((".wv1", ".wv2")):
            relative += ".wv1"  # the Nov'92 eval index omits the extension
        entries.append((_disc_id(disc.strip()) if _DISC.match(disc.strip()) else None, relative))
    return entries


def read_dot_files(roots: list[Path]) -> dict[str, Path]:
    """Session prefix (first 6 characters of an utterance id, lower case) -> its ``.dot`` file."""
    sessions: dict[str, Path] = {}
    for root in roots:
        for dot in sorted(root.rglob("*")):
            if dot.suffix.lower() == ".dot" and dot.is_file():
                sessions.setdefault(dot.stem[:6].lower(), dot)
    return sessions


@functools.lru_cache(maxsize=4096)
def _dot_transcripts(dot: Path) -> dict[str, str]:
    transcripts = {}
    for line in dot.read_text(encoding="latin-1").splitlines():
        match = re.match(r"^(.*)\((\w+)\)\s*$", line.strip())
        if match:
            transcripts[match.group(2).lower()] = match.group(1).strip()
    return transcripts


def prepare(
    wsj0: Path, wsj1: Path, out: Path, sets: list[str] | None = None, jobs: int = 4, progress: bool = True
) -> dict[str, Path]:
    """``out/wav/<set>/<utt>.wav`` and Kaldi data dirs ``out/data/<set>``; returns set -> data dir.

    Audio listed in an index but absent is an error (the folders are probably wrong); an utterance whose
    transcript is not in any ``.dot`` file is left out and counted.
    """
    roots = [Path(wsj0), Path(wsj1)]
    _listing.cache_clear()  # the caches hold one preparation's folders; the disc copy may have changed
    _dot_transcripts.cache_clear()
    for root in roots:
        if not root.is_dir():
            raise WsjError(f"{root}: not a folder; pass the folders holding the WSJ0 and WSJ1 discs")
    discs = find_discs(roots)
    sessions = read_dot_files(roots)
    data_dirs = {}
    for name in sets or list(SETS):
        if name not in SETS:
            raise WsjError(f"set {name!r}; accepted: {', '.join(SETS)}")
        entries: list[tuple[str, Path]] = []
        for index_path in SETS[name]:
            index = _locate(roots, discs, None, index_path)
            if index is None:
                raise WsjError(
                    f"{index_path} not found under {wsj0} or {wsj1} (discs found: {sorted(discs) or 'none'}); "
                    "pass the folders holding the LDC discs (e.g. 11-13.1/, 13-34.1/)"
                )
            for disc, relative in read_index(index):
                if f"{disc}/{relative}".lower().startswith(EXCLUDED):
                    continue
                audio = _locate(roots, discs, disc, relative)
                if audio is None:
                    raise WsjError(
                        f"{index}: lists {disc or ''}:{relative}, which is not under {wsj0} or {wsj1}; "
                        "are all discs of both corpora there?"
                    )
                entries.append((Path(relative).stem.lower(), audio))
        utterances, untranscribed = [], []
        for utt_id, audio in sorted(dict(entries).items()):
            dot = sessions.get(utt_id[:6])
            raw = _dot_transcripts(dot).get(utt_id) if dot else None
            if raw is None:
                untranscribed.append(utt_id)
                continue
            wav = out / "wav" / name / f"{utt_id}.wav"
            utterances.append((Utterance(utt_id, wav, normalize_transcript(raw), utt_id[:3]), audio))

        def convert(item: tuple[Utterance, Path]) -> None:
            if not item[0].wav_path.is_file():  # written atomically: present means complete
                sphere_to_wav(item[1], item[0].wav_path)

        with ThreadPoolExecutor(max(1, jobs)) as pool:
            list(tqdm(pool.map(convert, utterances), total=len(utterances), desc=f"wsj {name}", unit="utt",
                      disable=not progress))  # fmt: skip
        data_dirs[name] = write_data_dir(out / "data" / name, [u for u, _ in utterances])
        print(
            f"{name}: {len(utterances)} utterances -> {data_dirs[name]}"
            + (
                f"; {len(untranscribed)} without a .dot transcript left out, e.g. {untranscribed[:3]}"
                if untranscribed
                else ""
            )  # fmt: skip
        )
    return data_dirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.corpora.wsj", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--wsj0", type=Path, required=True, help="folder holding the WSJ0 (LDC93S6B) discs")
    parser.add_argument("--wsj1", type=Path, required=True, help="folder holding the WSJ1 (LDC94S13B) discs")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/wav/<set>/ and OUT/data/<set>/")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--jobs", type=int, default=4, help="parallel audio conversions")
    args = parser.parse_args(argv)
    return exit_status(
        lambda: prepare(args.wsj0, args.wsj1, args.out, args.sets, args.jobs),
        (WsjError, SphereError, OSError),
    )


if __name__ == "__main__":
    sys.exit(main())
