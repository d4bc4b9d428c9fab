"""One process per run folder: an exclusive lock held for the life of a run.

Two runs in one folder trample each other (one deletes the step file the other is about to link; two
seeds leave a folder mixing both). The lock is ``fcntl.flock`` on ``EXP_DIR/.dsd-seq.lock``: the kernel
releases it when the process ends however it ends (SIGKILL included), so a crash never leaves a stale
lock. The file holds the holder's pid and host, for the message a refused second run prints. Under
torchrun rank 0 alone locks (the ranks of one run share the folder by design).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from dsd_seq.safe_io import open_no_follow
from dsd_seq.training import distributed

LOCK_NAME = ".dsd-seq.lock"
#: the lock descriptors this process holds; a forked child (a data loader worker) closes its copies
_HELD: set[int] = set()


def _close_in_child() -> None:
    """In a forked child: drop the inherited lock descriptors. ``flock`` belongs to the open file, which a
    fork shares, so a worker that outlived its run by seconds would keep the folder locked and refuse
    an immediate ``--resume``."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


class RunLockedError(RuntimeError):
    """Another live process holds the run folder."""


class RunLock:
    """A context manager holding the lock on ``exp_dir`` (a no-op when not ``enabled``)."""

    def __init__(self, exp_dir: str | Path, enabled: bool = True):
        self.path = Path(exp_dir) / LOCK_NAME
        self.enabled = enabled
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_no_follow(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "a process that did not say"
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent} is in use by another run ({holder}); wait for it to end or stop it, or "
                "use another experiment folder. Two runs in one folder would overwrite each other's "
                "checkpoints and results"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        _HELD.add(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            _HELD.discard(self._fd)
            os.close(self._fd)  # closing the descriptor releases the lock; the file stays, harmlessly
            self._fd = None


@contextlib.contextmanager
def lock_for_all_ranks(exp_dir: str | Path, is_main: bool) -> Iterator[None]:
    """Rank 0 holds the lock for the ``with`` block; every rank learns whether it got it, so that under
    torchrun a refused run stops on all ranks at once instead of leaving the others at their first
    collective."""
    lock = RunLock(exp_dir, enabled=is_main)
    refusal = None
    try:
        lock.__enter__()
    except RunLockedError as err:
        refusal = str(err)
    refusal = distributed.broadcast_object(refusal)
    if refusal is not None:
        lock.__exit__()
        raise RunLockedError(refusal)
    try:
        yield
    finally:
        lock.__exit__()
