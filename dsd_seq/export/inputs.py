"""The inputs of ``dsd-seq transcribe`` / ``caption``: files, folders (searched recursively) and Kaldi
``wav.scp`` lists, each with the name its output line carries (the file's stem, or the utterance id)."""

from __future__ import annotations

from pathlib import Path

from dsd_seq.safe_io import read_utf8

AUDIO_SUFFIXES = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aiff",
    ".aif",
    ".au",
    ".sph",
    ".wv1",
    ".wv2",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class InputListError(ValueError):
    """An input argument that names nothing usable."""


def collect_inputs(
    arguments: list[str | Path], suffixes: tuple[str, ...], keep_suffix: bool = False
) -> list[tuple[str, Path]]:
    """(name, path) pairs: a file as given (bad ones fail later, one by one), a folder's files with
    ``suffixes`` in sorted order, every line of a ``*.scp`` file (``<id> <path>``). Names are file stems
    (utterance ids), or whole file names with ``keep_suffix`` (images: Karpathy files key on them)."""
    found: list[tuple[str, Path]] = []
    for argument in map(Path, arguments):
        if argument.is_dir():
            files = sorted(p for p in argument.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not files:
                raise InputListError(f"{argument}: a folder without files ending in {', '.join(suffixes)}")
            found += [(p.name if keep_suffix else p.stem, p) for p in files]
        elif argument.suffix == ".scp" and argument.is_file():
            found += _read_scp(argument)
        else:
            found.append((argument.name if keep_suffix else argument.stem, argument))
    names = [name for name, _ in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        # output lines are keyed by name: two files of one stem would be indistinguishable
        found = [(str(path), path) if name in repeated else (name, path) for name, path in found]
    return found


def _read_scp(path: Path) -> list[tuple[str, Path]]:
    out = []
    for number, line in enumerate(read_utf8(path, "list of audio files", InputListError).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[1].rstrip().endswith("|"):
            raise InputListError(f"{path}:{number}: expected '<utt-id> <audio file>', got {line!r}")
        file = Path(parts[1].strip())
        out.append((parts[0], file if file.is_absolute() else Path.cwd() / file))
    return out
