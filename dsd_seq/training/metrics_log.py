"""Metrics to a JSON-lines file (for scripts) and TensorBoard (for people)."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

from dsd_seq.safe_io import open_no_follow


class MetricsLog:
    """Appends one JSON object per event to ``metrics.jsonl`` and mirrors scalars to TensorBoard.

    ``enabled=False`` makes every call a no-op: under torchrun only rank 0 logs."""

    def __init__(self, exp_dir: str | Path, tensorboard: bool = True, enabled: bool = True):
        self.enabled = enabled
        self.exp_dir = Path(exp_dir)
        if not enabled:
            return
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.exp_dir / "metrics.jsonl"
        fd = open_no_follow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # a planted link: refused
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        _drop_torn_tail(self.path)
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.exp_dir / "tensorboard"))

    def log(self, event: str, step: int, **values: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "step": step, "time": round(time.time(), 3), **values}
        self._file.write(json.dumps(record, default=_jsonable) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    self._writer.add_scalar(f"{event}/{key}", value, step)

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._writer is not None:
            self._writer.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (a crash in the middle of a write) before appending, so the
    next record does not glue onto it and turn a skippable torn last line into a damaged middle one."""
    if not path.is_file():
        return
    with path.open("rb+") as f:
        size = f.seek(0, 2)
        if size == 0:
            return
        f.seek(max(0, size - (1 << 16)))
        tail = f.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        if cut < 0 and size > len(tail):
            return  # a last line longer than 64 KiB: leave it; read_metrics reports it
        f.truncate(size - len(tail) + cut + 1)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class MetricsLogError(ValueError):
    """A ``metrics.jsonl`` line that is not a JSON object, other than a torn last line."""


def read_metrics(path: str | Path) -> list[dict]:
    """Every record of a ``metrics.jsonl``, in file order.

    A damaged LAST line is what a crash in the middle of a write leaves: it is skipped with a warning.
    A damaged line before it is not explained by a crash, so it is an error naming the file and line.
    """
    path = Path(path)
    lines = path.read_bytes().split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records = []
    for index, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not an object")
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if index == last:
                warnings.warn(
                    f"{path}:{index + 1}: skipped a torn last line (a write cut short by a crash): {err}",
                    stacklevel=2,
                )
                break
            raise MetricsLogError(
                f"{path}:{index + 1}: not a metrics record ({err}); the file is damaged: "
                "delete or fix that line"
            ) from None
        records.append(record)
    return records
