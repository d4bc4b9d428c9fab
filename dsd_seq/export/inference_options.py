"""The option values ``dsd-seq transcribe`` and ``caption`` accept, checked as argparse reads them, so a
bad one is a one-line error naming the option before any model is loaded.

Bounds are generous for real use and stop the values that would hang or crash: a beam of 100,000, a chunk
of ``inf`` seconds, a batch of 0, a device that is not there.
"""

from __future__ import annotations

import argparse
import math

import torch

MAX_BEAM = 1000  # CTC beam search and caption beams; wider ones cost minutes per file for nothing
MAX_BATCH = 4096
MAX_CHUNK_SECONDS = 3600.0


def device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` of a GPU that is there."""
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda or cuda:N") from None
    if parsed.type == "cpu":
        return text
    if parsed.type != "cuda":
        raise argparse.ArgumentTypeError(f"{text!r}: dsd-seq runs models on cpu or cuda, not {parsed.type}")
    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device is available here; use --device cpu")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(
            f"{text!r}: there are {torch.cuda.device_count()} CUDA device(s), numbered from 0"
        )
    return text


def _whole(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({what})") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high} ({what})")
    return value


def beam(text: str) -> int:
    return _whole(text, 1, MAX_BEAM, "a beam width; 1 is greedy")


def batch_size(text: str) -> int:
    return _whole(text, 1, MAX_BATCH, "files decoded together")


def chunk_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= MAX_CHUNK_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be a finite number of seconds above 0, at most {MAX_CHUNK_SECONDS:g}"
        )
    return value
