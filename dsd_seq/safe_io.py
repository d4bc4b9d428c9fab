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
import pickle
import signal
import tempfile
from collections.abc import Callable, Iterable
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


def read_utf8(path: str | Path, what: str, error: type[Exception]) -> str:
    """The text of ``path``; ``error`` naming the file, the line and the byte when it is not UTF-8."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise error(
            f"{path}:{line}: not UTF-8 (byte 0x{data[err.start]:02x}); convert the {what} to UTF-8, e.g. "
            "`iconv -f latin1 -t utf-8`"
        ) from None


class LinkRefusedError(OSError):
    """A run-folder file that is a symbolic link: writing through it would change the file it points at."""


def open_no_follow(path: str | Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that never follows a symbolic link at ``path`` (``O_NOFOLLOW``): a link planted where
    a run writes its lock or log would otherwise truncate or append to whatever it points at."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError as err:
        if os.path.islink(path):
            raise LinkRefusedError(
                f"{path} is a symbolic link; dsd-seq writes the files of a run folder itself and does not "
                "follow links (it would write into the file the link points at). Remove the link, or use "
                "another experiment folder"
            ) from None
        raise err


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`write_atomic`."""
    write_atomic(path, lambda f: torch.save(obj, f))


ENVELOPE_FORMAT = 2
MAGIC = b"dsd-seq-checkpoint "
#: Test hook: SIGKILL this process on the N-th checkpoint write, after the data is on disk in the
#: temporary file and before the rename (the worst moment for a crash); used by tests/test_crash_resume.py.
KILL_IN_WRITE_ENV = "DSD_SEQ_TEST_KILL_IN_CHECKPOINT_WRITE"
_writes = 0
#: Test hook: ``NAME:N`` SIGKILLs this process the N-th time it reaches :func:`kill_point` ``NAME`` (the
#: moments between the steps of a phase end; used by tests/test_crash_windows.py).
KILL_AT_ENV = "DSD_SEQ_TEST_KILL_AT"
_reached: dict[str, int] = {}


def kill_point(name: str) -> None:
    """SIGKILL here when :data:`KILL_AT_ENV` asks for this point and this count (tests only)."""
    wanted = os.environ.get(KILL_AT_ENV)
    if not wanted:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if wanted == f"{name}:{_reached[name]}":
        os.kill(os.getpid(), signal.SIGKILL)


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


#: The keys every checkpoint the trainer writes holds (see ``Trainer.state_dict``); callers that need the
#: weights pass ``expect_keys=CHECKPOINT_KEYS`` to :func:`load_safely` or use :func:`load_checkpoint_dict`.
CHECKPOINT_KEYS = ("model",)


def _torch_reason(err: BaseException) -> str:
    """The first line of torch's message, unless it is torch's advice to load with ``weights_only=False``:
    for a file that is not what it claims to be that advice is exactly wrong."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    if not lines or any("weights_only" in line for line in lines):
        return type(err).__name__
    return f"{type(err).__name__}: {lines[0][:200]}"


def load_torch_plain(source: str | Path | BinaryIO, path: str | Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` whose errors name the file and say what to do.

    A pickle that asks for anything but tensors and plain values (or is not a pickle at all) is refused
    as "not a dsd-seq <what>", and nothing more is said: torch's own message suggests ``weights_only=False``, which for a hostile
    file would run its code.
    """
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{what} {path} cannot be read safely: it is not a dsd-seq {what} (it holds something other "
            "than the tensors and plain values dsd-seq writes: Python objects, or damaged data); "
            "it was not loaded"
        ) from None
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"{what} {path} cannot be read safely ({_torch_reason(err)}); "
            "it may be truncated or not a dsd-seq file: delete it to restart from the previous one"
        ) from None


def load_safely(path: str | Path, what: str = "checkpoint", expect_keys: Iterable[str] = ()) -> dict:
    """Load with ``weights_only=True``; errors name the file and say what to do.

    The file must hold a dict (a list, a tensor or a bare number is refused), with each of
    ``expect_keys`` when given (a bare ``state_dict`` is not a checkpoint: it lacks ``model``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; check the path or run the stage that writes it")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{what} {path} is empty (0 bytes): its write was cut short (a crash or a full disk); "
            "delete it to restart from the previous one"
        )
    with path.open("rb") as f:
        enveloped = f.read(len(MAGIC)) == MAGIC
    # A plain torch file (a feature cache, a format-1 checkpoint) loads from disk as it is: reading it into
    # memory first would peak at about twice its size. An envelope is read whole to check its checksum.
    source = io.BytesIO(read_checkpoint_bytes(path, what)) if enveloped else path
    state = load_torch_plain(source, path, what)
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{what} {path} holds a {type(state).__name__}, not a dsd-seq {what} (a dict); "
            "point to a file dsd-seq wrote"
        )
    missing = [key for key in expect_keys if key not in state]
    if missing:
        found = ", ".join(repr(k) for k in list(state)[:5]) + (", ..." if len(state) > 5 else "")
        raise CheckpointError(
            f"{what} {path} is not a dsd-seq {what}: it lacks {', '.join(repr(k) for k in missing)} "
            f"(its keys: {found or 'none'}; a bare state_dict is not a checkpoint); "
            "point to a file dsd-seq wrote"
        )
    return state


def load_checkpoint_dict(path: str | Path, what: str = "checkpoint", needs: Iterable[str] = ()) -> dict:
    """A checkpoint the trainer wrote, checked to hold the model weights (:data:`CHECKPOINT_KEYS`) and
    the keys the caller ``needs`` (a resumed run: the optimizer, masks, position ...). Every command that
    reads a checkpoint goes through here, so a 0-byte, foreign or damaged file gets the same message."""
    return load_safely(path, what, expect_keys=(*CHECKPOINT_KEYS, *needs))


def read_json_manifest(path: str | Path, error: type[Exception], missing: str, fix: str) -> dict:
    """The JSON object in ``path``: a manifest that says what a folder holds (a feature store, a model
    package). A missing file raises ``error(missing)``; one that cannot be read, is not UTF-8 JSON or not
    a JSON object raises ``error`` naming the path and ending in ``fix`` (what to do). The caller checks
    the format and version keys, whose rules differ per kind of folder."""
    path = Path(path)
    if not path.is_file():
        raise error(missing)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise error(f"{path}: unreadable manifest ({err}); {fix}") from err
    if not isinstance(manifest, dict):
        raise error(f"{path}: unreadable manifest (a JSON {type(manifest).__name__}, not an object); {fix}")
    return manifest
