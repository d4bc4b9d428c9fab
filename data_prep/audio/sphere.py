"""NIST SPHERE audio (WSJ's ``.wv1``/``.wv2``): read uncompressed PCM, convert to WAV.

Why our own reader: a SPHERE file is a 1024-byte text header (``NIST_1A``, the header size, then
``name -type value`` lines up to ``end_head``) followed by raw samples, which is a few lines to parse and
lets us check the header against the file (a truncated copy is an error, not a shorter utterance). The LDC
discs, though, hold shorten-compressed audio (``sample_coding -s26 pcm,embedded-shorten-v2.00``); that
codec is converted by NIST's ``sph2pipe`` when it is on PATH, and otherwise refused with a message saying
how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

MAGIC = b"NIST_1A\n"
HEADER_BYTES = 1024
SPH2PIPE_HELP = (
    "install NIST's sph2pipe (e.g. Kaldi's tools/extras: `make sph2pipe`, or "
    "https://github.com/burrmill/sph2pipe: make, then put sph2pipe on PATH) and run again"
)


class SphereError(ValueError):
    """A SPHERE file that cannot be read; the message names the file and what to do."""


def read_header(path: str | os.PathLike) -> dict[str, int | float | str]:
    """The header fields of a SPHERE file (``-i`` as int, ``-r`` as float, ``-sN`` as str)."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(16)
        if not head.startswith(MAGIC):
            raise SphereError(f"{path}: not a NIST SPHERE file (no NIST_1A header); is it the corpus's .wv1?")
        try:
            size = int(head[len(MAGIC) :].split(b"\n")[0])
        except ValueError:
            raise SphereError(f"{path}: unreadable SPHERE header size; the file is damaged") from None
        f.seek(0)
        header = f.read(size)
    if len(header) < size:
        raise SphereError(f"{path}: the file ends inside its {size}-byte header; copy it again")
    fields: dict[str, int | float | str] = {"header_bytes": size}
    for line in header.decode("ascii", errors="replace").splitlines()[2:]:
        if line.strip() == "end_head":
            return fields
        name, _, rest = line.partition(" ")
        kind, _, value = rest.partition(" ")
        if kind == "-i":
            fields[name] = int(value)
        elif kind == "-r":
            fields[name] = float(value)
        elif kind.startswith("-s"):
            fields[name] = value[: int(kind[2:])] if kind[2:].isdigit() else value
    raise SphereError(f"{path}: SPHERE header without end_head; the file is damaged")


def read_sphere(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Samples ``[frames, channels]`` as int16 and the sample rate of an uncompressed 16-bit PCM file."""
    path = Path(path)
    fields = read_header(path)
    coding = str(fields.get("sample_coding", "pcm"))
    if "shorten" in coding:
        raise SphereError(
            f"{path}: shorten-compressed SPHERE ({coding}); convert it with sph2pipe: {SPH2PIPE_HELP}"
        )
    if coding != "pcm" or fields.get("sample_n_bytes", 2) != 2:
        raise SphereError(
            f"{path}: sample_coding {coding!r} with {fields.get('sample_n_bytes')} bytes a sample; only "
            "16-bit PCM is read here: convert it with sph2pipe -p"
        )
    for key in ("sample_count", "sample_rate"):
        if key not in fields:
            raise SphereError(f"{path}: SPHERE header lacks {key}; the file is damaged")
    channels = int(fields.get("channel_count", 1))
    order = "<" if str(fields.get("sample_byte_format", "01")) == "01" else ">"
    expected = int(fields["sample_count"]) * channels
    data = np.fromfile(path, dtype=f"{order}i2", offset=int(fields["header_bytes"]))
    if data.size < expected:
        raise SphereError(
            f"{path}: truncated: the header announces {expected} samples, the file holds {data.size}; "
            "copy it again from the corpus disc"
        )
    return data[:expected].astype(np.int16).reshape(-1, channels), int(fields["sample_rate"])


def write_sphere(path: str | os.PathLike, samples: np.ndarray, sample_rate: int, big_endian: bool = False):
    """Write mono or ``[frames, channels]`` int16 samples as uncompressed SPHERE (tests build fixtures)."""
    samples = np.asarray(samples, dtype=np.int16)
    samples = samples.reshape(samples.shape[0], -1)
    lines = [
        "NIST_1A",
        f"{HEADER_BYTES:7d}",
        f"sample_count -i {samples.shape[0]}",
        f"sample_rate -i {sample_rate}",
        f"channel_count -i {samples.shape[1]}",
        "sample_byte_format -s2 " + ("10" if big_endian else "01"),
        "sample_n_bytes -i 2",
        "sample_coding -s3 pcm",
        "end_head",
    ]
    header = ("\n".join(lines) + "\n").encode("ascii").ljust(HEADER_BYTES, b" ")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(header + samples.astype(">i2" if big_endian else "<i2").tobytes())


def sphere_to_wav(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Convert one SPHERE file to 16-bit WAV (written to a temporary name, then renamed into place)."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    coding = str(read_header(src).get("sample_coding", "pcm"))
    if "shorten" in coding:
        sph2pipe = shutil.which("sph2pipe")
        if sph2pipe is None:
            raise SphereError(
                f"{src}: shorten-compressed SPHERE ({coding}) and sph2pipe is not on PATH: {SPH2PIPE_HELP}"
            )
        done = subprocess.run(
            [sph2pipe, "-f", "wav", "-p", str(src), str(tmp)], capture_output=True, text=True
        )
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise SphereError(f"{src}: sph2pipe failed ({done.stderr.strip()[:300]}); copy the file again")
    else:
        samples, rate = read_sphere(src)
        sf.write(str(tmp), samples, rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, dst)
    return dst
