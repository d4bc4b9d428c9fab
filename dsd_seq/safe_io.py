"""Files that survive crashes and hostile input: atomic writes, and checksummed torch files loaded
without unpickling code.

A leaf module (torch only): data preparation, training and reports all write and read through it.

A checkpoint is a plain dict of tensors and Python primitives (model, optimizer, masks, schedule
position, RNG states), so ``torch.load(weights_only=True)`` reads it and a tampered file cannot run code.

On disk it is an envelope: one header line ``dsd-seq-checkpoint {"format": 2, "sha256": ..., "bytes": ...}``
then the ``torch.save`` payload. The checksum is checked before unpickling, so a truncated file or a
flipped bit (a full disk, a copy cut short) is reported as such instead of loading wrong weights or
failing deep inside torch. Files without the header (format 1, written before the envelope) still load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or from an incompatible run."""


def write_atomic(path: str | Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` (bytes, or a function writing to a binary file) to a temporary file in the same
    folder, fsync, then rename over ``path``: a crash leaves either the old or the new file, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`write_atomic`."""
    write_atomic(path, lambda f: torch.save(obj, f))


ENVELOPE_FORMAT = 2
MAGIC = b"dsd-seq-checkpoint "
#: Test hook: SIGKILL this process on the N-th checkpoint write, after the data is on disk in the
#: temporary file and before the rename (the worst moment for a crash); used by tests/test_crash_resume.py.
KILL_IN_WRITE_ENV = "DSD_SEQ_TEST_KILL_IN_CHECKPOINT_WRITE"
_writes = 0


def save_checkpoint(obj: Any, path: str | Path) -> None:
    """Save ``obj`` in the checksummed envelope, atomically (see the module docstring)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getbuffer()
    header = {"format": ENVELOPE_FORMAT, "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}

    def write(f: BinaryIO) -> None:
        global _writes
        f.write(MAGIC + json.dumps(header).encode() + b"\n")
        f.write(payload)
        _writes += 1
        if os.environ.get(KILL_IN_WRITE_ENV) == str(_writes):
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    write_atomic(path, write)


def read_checkpoint_bytes(path: Path, what: str) -> bytes:
    """The verified payload of an enveloped file (or the whole of a format-1 file)."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        return data
    end = data.find(b"\n")
    try:
        header = json.loads(data[len(MAGIC) : end])
        expected, size = header["sha256"], int(header["bytes"])
        version = header["format"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(
            f"{what} {path}: damaged header; the file is corrupt: delete it to resume from an earlier one"
        ) from None
    if version != ENVELOPE_FORMAT:
        raise CheckpointError(
            f"{what} {path}: envelope format {version!r}, this dsd-seq reads {ENVELOPE_FORMAT}; "
            "use the dsd-seq version that wrote it"
        )
    payload = data[end + 1 :]
    if len(payload) != size:
        raise CheckpointError(
            f"{what} {path} is truncated ({len(payload)} of {size} payload bytes); "
            "delete it to resume from an earlier one"
        )
    if hashlib.sha256(payload).hexdigest() != expected:
        raise CheckpointError(
            f"{what} {path} is corrupt (sha256 mismatch); delete it to resume from an earlier one"
        )
    return payload


def load_safely(path: str | Path, what: str = "checkpoint") -> dict:
    """Load with ``weights_only=True``; errors name the file and say what to do."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; check the path or run the stage that writes it")
    payload = read_checkpoint_bytes(path, what)
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"{what} {path} cannot be read safely ({type(err).__name__}: {str(err).splitlines()[0]}); "
            "it may be truncated or not a dsd-seq file: delete it to restart from the previous one"
        ) from err
