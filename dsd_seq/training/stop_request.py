"""Ctrl-C (SIGINT) or SIGTERM during training: finish the current step, checkpoint, return.

The run then stands unfinished, and ``dsd-seq train`` says so by its exit status, the shell's convention
for a process ended by a signal (:func:`exit_status`: 130 after SIGINT, 143 after SIGTERM), so that a
recipe running under ``set -e`` stops instead of treating the run as done.

A second signal stops at once (KeyboardInterrupt). Outside the main thread, where Python cannot install
signal handlers, nothing is installed and the signals keep their usual effect.
"""

from __future__ import annotations

import signal
import threading

from tqdm.auto import tqdm


class StopRequest:
    """A context manager holding the handlers while a run trains; ``requested`` says a signal came."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: int | None = None  # the first signal that asked to stop
        self._previous: dict = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._request) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _request(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested, self.signal = True, signum
        tqdm.write("stopping after this step; the checkpoint will hold the position (Ctrl-C again to abort)")


def exit_status(signum: int | None) -> int:
    """The exit status of a run a signal stopped before its end: 128 + the signal's number (130 for
    SIGINT, 143 for SIGTERM); 130 when the signal is not known (a stop agreed from another rank)."""
    return 128 + (signum if signum else signal.SIGINT)
