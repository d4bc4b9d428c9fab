"""The exit status of a data-preparation script: the errors it expects become one line for people.

A recipe stage runs ``python -m data_prep.<module>``; a corpus that is missing or damaged should stop it
with ``error: <what and where, what to do>`` on stderr and status 1, not a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def exit_status(work: Callable[[], object], errors: tuple[type[Exception], ...]) -> int:
    """Run ``work``; 0 when it returns, 1 after printing ``error: <message>`` when it raises one of
    ``errors`` (any other exception propagates: it is a bug, and its traceback is wanted)."""
    try:
        work()
    except errors as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
