"""LibriSpeech (OpenSLR 12) and Mini LibriSpeech (OpenSLR 31): download, verify, extract, data dirs.

An archive ``<subset>.tar.gz`` extracts to ``LibriSpeech/<subset>/<reader>/<chapter>/`` holding
``<reader>-<chapter>-<utt>.flac`` files and one ``<reader>-<chapter>.trans.txt`` (``<utt-id> TEXT`` lines).
The data dir's ``wav.scp`` lists the FLAC files themselves: soundfile reads FLAC, so nothing is converted.
Downloads are resumable and used only after their checksum matches (:mod:`data_prep.corpora.archive`).

Run: python -m data_prep.corpora.librispeech fetch --subsets dev-clean [...] --dest DIR --corpus DIR [--mirror URL]
            [--sha256 SUBSET=HEX]   (download, verify, extract; CORPUS/LibriSpeech/<subset>.done when done)
     python -m data_prep.corpora.librispeech prepare --corpus DIR --split train=train-clean-100,train-clean-360
            --split dev=dev-clean --out DIR   (one Kaldi data dir OUT/<name> per --split)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from data_prep.corpora.archive import ArchiveError, download_with_checksum, extract_archive
from data_prep.corpora.exit_status import exit_status
from data_prep.corpora.kaldi_dir import Utterance, write_data_dir

DEFAULT_MIRROR = "https://www.openslr.org"  # or e.g. https://us.openslr.org, https://openslr.elda.org

# Published checksums. OpenSLR 12: the sha256 values torchaudio pins in
# torchaudio.datasets.librispeech._CHECKSUMS (torchaudio 2.11). OpenSLR 31 publishes only md5
# (its md5sum.txt); the same values are pinned by PaddlePaddle DeepSpeech's mini LibriSpeech preparation.
SUBSETS: dict[str, tuple[int, str, str]] = {  # subset -> (OpenSLR resource, algorithm, checksum)
    "dev-clean": (12, "sha256", "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3"),
    "dev-other": (12, "sha256", "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365"),
    "test-clean": (12, "sha256", "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23"),
    "test-other": (12, "sha256", "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29"),
    "train-clean-100": (12, "sha256", "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2"),
    "train-clean-360": (12, "sha256", "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf"),
    "train-other-500": (12, "sha256", "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2"),
    "dev-clean-2": (31, "md5", "6d7ab67ac6a1d2c993d050e16d61080d"),
    "train-clean-5": (31, "md5", "5df7d4e78065366204ca6845bb08f490"),
}


class LibriSpeechError(ValueError):
    """A subset that is unknown, missing on disk or laid out unlike LibriSpeech."""


def _check_subset(subset: str) -> None:
    if subset not in SUBSETS:
        raise LibriSpeechError(f"subset {subset!r}; accepted: {', '.join(SUBSETS)}")


def archive_url(subset: str, mirror: str = DEFAULT_MIRROR) -> str:
    _check_subset(subset)
    return f"{mirror.rstrip('/')}/resources/{SUBSETS[subset][0]}/{subset}.tar.gz"


def download(
    subset: str, dest: str | os.PathLike, mirror: str = DEFAULT_MIRROR, sha256: str | None = None,
    progress: bool = True,
) -> Path:  # fmt: skip
    """``dest/<subset>.tar.gz``, verified against ``sha256`` if given, else the published checksum."""
    _check_subset(subset)
    _, algorithm, published = SUBSETS[subset]
    checksum = {"sha256": sha256} if sha256 else {algorithm: published}
    return download_with_checksum(
        archive_url(subset, mirror), Path(dest) / f"{subset}.tar.gz", **checksum, progress=progress
    )


def extract(archive: str | os.PathLike, subset: str, corpus: str | os.PathLike) -> Path:
    """Extract safely into ``corpus``; returns ``corpus/LibriSpeech/<subset>`` (which must then exist)."""
    extract_archive(archive, corpus)
    folder = Path(corpus) / "LibriSpeech" / subset
    if not folder.is_dir():
        raise LibriSpeechError(
            f"{archive}: extracted, but {folder} does not exist; is it the LibriSpeech {subset} archive?"
        )
    return folder


def read_subset(corpus: str | os.PathLike, subset: str) -> list[Utterance]:
    """Utterances of ``corpus/LibriSpeech/<subset>``, speaker = reader id; FLAC files must exist."""
    folder = Path(corpus) / "LibriSpeech" / subset
    transcripts = sorted(folder.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise LibriSpeechError(
            f"{folder}: no <reader>/<chapter>/*.trans.txt files; download and extract {subset} first "
            f"(python -m data_prep.corpora.librispeech fetch --subsets {subset} --dest DOWNLOADS --corpus {corpus})"
        )
    utterances = []
    for trans in transcripts:
        with trans.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                utt_id, _, text = line.strip().partition(" ")
                if utt_id.count("-") != 2 or not text.strip():
                    raise LibriSpeechError(
                        f"{trans}:{lineno}: expected '<reader>-<chapter>-<utt> TEXT', got {line.strip()!r}"
                    )
                audio = trans.parent / f"{utt_id}.flac"
                if not audio.is_file():
                    raise LibriSpeechError(
                        f"{trans}:{lineno}: {audio} is missing; the extraction is incomplete: delete "
                        f"{folder} and extract the archive again"
                    )
                utterances.append(Utterance(utt_id, audio.absolute(), text.strip(), utt_id.split("-")[0]))
    return utterances


def prepare(corpus: str | os.PathLike, subsets: list[str], out: str | os.PathLike) -> Path:
    """One Kaldi data dir holding every utterance of ``subsets`` (e.g. the 960 h of all three train sets)."""
    utterances = [u for subset in subsets for u in read_subset(corpus, subset)]
    path = write_data_dir(out, utterances)
    print(f"{path}: {len(utterances)} utterances from {', '.join(subsets)}")
    return path


def fetch(
    subsets: list[str],
    dest: Path,
    corpus: Path,
    mirror: str = DEFAULT_MIRROR,
    sha256s: dict[str, str] | None = None,
) -> None:
    """Download, verify and extract each subset not yet marked ``corpus/LibriSpeech/<subset>.done``."""
    for subset in subsets:
        _check_subset(subset)
        marker = corpus / "LibriSpeech" / f"{subset}.done"
        if marker.is_file():
            print(f"{subset}: extracted already ({marker})")
            continue
        archive = download(subset, dest, mirror, (sha256s or {}).get(subset))
        shutil.rmtree(corpus / "LibriSpeech" / subset, ignore_errors=True)  # a half-extracted attempt
        print(f"extracted {extract(archive, subset, corpus)}")
        marker.touch()


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise LibriSpeechError(f"{what} {item!r}: expected NAME=VALUE")
        pairs[key] = value
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.corpora.librispeech", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("fetch", help="download (verified, resumable) and extract subsets")
    get.add_argument("--subsets", nargs="+", required=True, choices=list(SUBSETS))
    get.add_argument("--dest", type=Path, required=True, help="folder for the .tar.gz archives")
    get.add_argument("--corpus", type=Path, required=True, help="extract to CORPUS/LibriSpeech/<subset>")
    get.add_argument("--mirror", default=DEFAULT_MIRROR, help="OpenSLR mirror (the URL before /resources)")
    get.add_argument("--sha256", action="append", default=[], metavar="SUBSET=HEX",
                     help="check this sha256 instead of the published checksum")  # fmt: skip
    prep = sub.add_parser("prepare", help="Kaldi data dirs of extracted subsets")
    prep.add_argument("--corpus", type=Path, required=True, help="folder holding LibriSpeech/")
    prep.add_argument("--split", action="append", required=True, metavar="NAME=SUBSET[,SUBSET...]")
    prep.add_argument("--out", type=Path, required=True, help="writes OUT/<name> for each --split")
    args = parser.parse_args(argv)

    def work() -> None:
        if args.command == "fetch":
            fetch(args.subsets, args.dest, args.corpus, args.mirror, _pairs(args.sha256, "--sha256"))
        else:
            for name, subsets in _pairs(args.split, "--split").items():
                prepare(args.corpus, subsets.split(","), args.out / name)

    return exit_status(work, (ArchiveError, LibriSpeechError, OSError))


if __name__ == "__main__":
    sys.exit(main())
