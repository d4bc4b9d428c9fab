"""Fixture corpora in the real on-disk formats of LibriSpeech and WSJ, made from the project's synthetic speech.

The audio is the espeak-ng corpus of :mod:`data_prep.corpora.synth_speech`; only the packaging imitates the real
corpora: LibriSpeech's ``.tar.gz`` with FLAC files and ``.trans.txt`` per chapter, and WSJ's LDC discs with
``.ndx`` indices, ``.dot`` transcripts (with the corpus's markers) and ``.wv1`` NIST SPHERE audio.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import soundfile as sf

from data_prep.audio.sphere import write_sphere
from data_prep.corpora.kaldi_dir import Utterance, read_data_dir
from data_prep.corpora.librispeech import SUBSETS
from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus


def synth_utterances(folder: Path, num_train: int, num_dev: int, num_test: int) -> dict[str, list[Utterance]]:
    dirs = generate_corpus(
        folder,
        SynthSpeechConfig(num_train=num_train, num_dev=num_dev, num_test=num_test, jobs=1),
        progress=False,
    )
    return {split: read_data_dir(path) for split, path in dirs.items()}


def write_librispeech_archive(mirror: Path, subset: str, utterances: list[Utterance]) -> Path:
    """``mirror/resources/<n>/<subset>.tar.gz`` laid out as OpenSLR's; readers numbered by voice."""
    staging = mirror / "staging" / subset
    top = staging / "LibriSpeech"
    readers = {spk: str(1000 + 17 * i) for i, spk in enumerate(sorted({u.speaker for u in utterances}))}
    chapters: dict[tuple[str, str], list[str]] = {}
    for utt in utterances:
        reader = readers[utt.speaker]
        chapter = str(int(reader) * 10 + 3)
        lines = chapters.setdefault((reader, chapter), [])
        utt_id = f"{reader}-{chapter}-{len(lines):04d}"
        folder = top / subset / reader / chapter
        folder.mkdir(parents=True, exist_ok=True)
        audio, rate = sf.read(str(utt.wav_path), dtype="int16")
        sf.write(str(folder / f"{utt_id}.flac"), audio, rate, format="FLAC")
        lines.append(f"{utt_id} {utt.text.upper()}")
    for (reader, chapter), lines in chapters.items():
        (top / subset / reader / chapter / f"{reader}-{chapter}.trans.txt").write_text(
            "\n".join(lines) + "\n"
        )
    for name in ("README.TXT", "CHAPTERS.TXT", "SPEAKERS.TXT", "LICENSE.TXT"):
        (top / name).write_text(f"; fixture {name}\n")
    archive = mirror / "resources" / str(SUBSETS[subset][0]) / f"{subset}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(top, arcname="LibriSpeech")
    return archive


# (set name, corpus, disc of the index, index path, disc of the audio, audio folder, extension in the index)
WSJ_SETS = {
    "train_si284": [
        ("wsj1", "13-34.1", "wsj1/doc/indices/si_tr_s.ndx", "13-2.1", "wsj1/si_tr_s", True),
        ("wsj0", "11-13.1", "wsj0/doc/indices/train/tr_s_wv1.ndx", "11-2.1", "wsj0/si_tr_s", True),
    ],
    "test_dev93": [("wsj1", "13-34.1", "wsj1/doc/indices/h1_p0.ndx", "13-16.1", "wsj1/si_dt_20", True)],
    "test_eval92": [
        ("wsj0", "11-13.1", "wsj0/doc/indices/test/nvp/si_et_20.ndx", "11-14.1", "wsj0/si_et_20", False)
    ],
}
# The corpus's transcript markers around the spoken words, and what a character model must hear.
MARKED = [
    ("[loud_breath] {text} [door_slam>]", "{text}"),
    ("{text} \\,COMMA", "{text} comma"),
    ('"DOUBLE-QUOTE {text} ~', "double quote {text}"),
    ("<{text}> .", "{text}"),
    ("*{text}* [/phone_ring]", "{text}"),
]


def write_wsj_discs(root: Path, utterances: dict[str, list[Utterance]]) -> dict[str, dict[str, str]]:
    """LDC disc folders under ``root/wsj0`` and ``root/wsj1``; returns set -> utt id -> expected text.

    Disc 13-16.1 is written upper-cased, as some copies of it are. ``utterances`` maps set names of
    :data:`WSJ_SETS` to audio; each set's utterances are spread over its index files.
    """
    expected: dict[str, dict[str, str]] = {}
    sessions: dict[tuple[str, str], list[str]] = {}
    for set_name, utts in utterances.items():
        parts = WSJ_SETS[set_name]
        index_lines: dict[Path, list[str]] = {}
        for i, utt in enumerate(utts):
            corpus, index_disc, index_path, audio_disc, folder, with_ext = parts[i % len(parts)]
            speaker = f"{set_name[-2:]}{i % 3}"[:3] if set_name != "train_si284" else f"0{corpus[-1]}{i % 2}"
            utt_id = f"{speaker}c{(i // 3) % 100:02d}{i:02x}"[:8]
            rel = f"{folder}/{speaker}/{utt_id}.wv1"
            if audio_disc == "13-16.1":
                rel = rel.upper()
            wave, rate = sf.read(str(utt.wav_path), dtype="int16")
            write_sphere(root / corpus / audio_disc / rel, wave, rate, big_endian=i % 2 == 1)
            entry = f"{audio_disc.replace('-', '_').replace('.', '_')}:{rel if with_ext else rel[:-4]}"
            index_lines.setdefault(root / corpus / index_disc / index_path, []).append(entry)
            marked, heard = MARKED[i % len(MARKED)]
            transcript_dir = root / corpus / audio_disc / corpus / "transcrp" / "dots" / Path(folder).name
            sessions.setdefault((str(transcript_dir / speaker), utt_id[:6]), []).append(
                f"{marked.format(text=utt.text.upper())} ({utt_id})"
            )
            expected.setdefault(set_name, {})[utt_id] = heard.format(text=utt.text)
        for path, lines in index_lines.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            header = [";: index of a fixture set", ";: disc:path"]
            with path.open("a") as f:
                f.write("\n".join(header + lines) + "\n")
    for (folder, session), lines in sessions.items():
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{session}00.dot").write_text("\n".join(lines) + "\n")
    return expected
