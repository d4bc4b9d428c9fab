"""Bad inputs of a trained model used as a tool (``speech_recognizer``, ``image_captioner``).

Each tool answers every input with a result that carries either a text or the error that names the
input, so a batch goes on past a bad file; the list-returning calls (``transcribe``, ``caption``) turn
the first error into an :class:`InputError` instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class InputError(ValueError):
    """One input cannot be transcribed or captioned; the message names it."""


class InputResult(Protocol):
    text: str | None  # None when the input failed
    error: str | None


def texts_or_raise(results: Iterable[InputResult]) -> list[str]:
    """The texts of ``results`` in order; the first result with an error raises it as an InputError."""
    texts = []
    for result in results:
        if result.error:
            raise InputError(result.error)
        texts.append(result.text)
    return texts
