"""Ctrl-C (SIGINT) or SIGTERM during training: finish the current step, checkpoint, return.

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
        self.requested = True
        tqdm.write("stopping after this step; the checkpoint will hold the position (Ctrl-C again to abort)")
