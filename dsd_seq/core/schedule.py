"""The DSD phase schedule: Dense, Sparse, Re-dense, iterated (DSDSD...).

A phase is ``{dense|sparse, epochs, lr, sparsity}``. The compact command-line form lists phases separated
by commas: ``D<epochs>:<lr>`` or ``S<epochs>@<sparsity>:<lr>``, e.g. the DeepSpeech 1 schedule of
Table 7 is ``D50:8e-4,S50@0.5:5e-4,D50:3e-4,S50@0.25:1e-4,D50:3e-5``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

DENSE = "dense"
SPARSE = "sparse"

_COMPACT = re.compile(
    r"^(?P<kind>[DS])(?P<epochs>\d+)(@(?P<sparsity>[0-9.eE+-]+))?:(?P<lr>[0-9.eE+-]+)(~(?P<decay>[0-9.eE+-]+))?$"
)


class ScheduleError(ValueError):
    """A schedule that cannot be run; the message names the phase and the accepted values."""


@dataclass(frozen=True)
class Phase:
    """One phase of training. ``lr_decay`` multiplies the learning rate after every epoch of the phase."""

    kind: str
    epochs: int
    lr: float
    sparsity: float = 0.0
    lr_decay: float = 1.0

    def validate(self, where: str) -> None:
        if self.kind not in (DENSE, SPARSE):
            raise ScheduleError(f"{where}: kind must be 'dense' or 'sparse', got {self.kind!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or not 1 <= self.epochs < 2**31:
            raise ScheduleError(
                f"{where}: epochs must be a positive integer (accepted: 1 .. 2**31 - 1), got {self.epochs!r}"
            )
        if not (isinstance(self.lr, int | float) and self.lr > 0 and math.isfinite(self.lr)):
            raise ScheduleError(
                f"{where}: lr must be a positive number (finite: accepted > 0), got {self.lr!r}"
            )
        if not (isinstance(self.lr_decay, int | float) and 0 < self.lr_decay <= 1):
            raise ScheduleError(f"{where}: lr_decay must be in (0, 1], got {self.lr_decay!r}")
        if self.kind == SPARSE and not 0.0 < self.sparsity < 1.0:
            raise ScheduleError(f"{where}: a sparse phase needs sparsity in (0, 1), got {self.sparsity!r}")
        if self.kind == DENSE and self.sparsity != 0.0:
            raise ScheduleError(f"{where}: a dense phase takes no sparsity (got {self.sparsity!r})")

    def lr_at(self, epoch_in_phase: int) -> float:
        return self.lr * self.lr_decay**epoch_in_phase

    def compact(self) -> str:
        s = f"{'D' if self.kind == DENSE else 'S'}{self.epochs}"
        if self.kind == SPARSE:
            s += f"@{self.sparsity:g}"
        s += f":{self.lr:g}"
        if self.lr_decay != 1.0:
            s += f"~{self.lr_decay:g}"
        return s


@dataclass(frozen=True)
class Schedule:
    phases: tuple[Phase, ...]

    def __post_init__(self) -> None:
        if not self.phases:
            raise ScheduleError("schedule: at least one phase is needed")
        for i, phase in enumerate(self.phases):
            phase.validate(
                f"schedule phase {i + 1} ({phase.compact() if phase.kind in (DENSE, SPARSE) else phase})"
            )

    def __iter__(self) -> Iterator[Phase]:
        return iter(self.phases)

    def __len__(self) -> int:
        return len(self.phases)

    def __getitem__(self, i: int) -> Phase:
        return self.phases[i]

    @property
    def has_sparse_phase(self) -> bool:
        return any(p.kind == SPARSE for p in self.phases)

    @property
    def total_epochs(self) -> int:
        return sum(p.epochs for p in self.phases)

    def label(self, index: int) -> str:
        """The paper's row names: Dense, Sparse, Re-dense; later iterations numbered (Sparse 2, ...)."""
        iteration = sum(p.kind == SPARSE for p in self.phases[: index + 1])
        if iteration == 0:
            return "Dense"
        name = "Sparse" if self.phases[index].kind == SPARSE else "Re-dense"
        return name if iteration == 1 else f"{name} {iteration}"

    def compact(self) -> str:
        return ",".join(p.compact() for p in self.phases)

    def llr(self) -> Schedule:
        """The LLR baseline (Sec. 5.2): the same epochs and learning rates, no pruning."""
        return Schedule(tuple(replace(p, kind=DENSE, sparsity=0.0) for p in self.phases))

    def fine_tune(self) -> Schedule:
        """Plain fine-tuning at equal epochs (the paper's Appendix A control): after the first (dense)
        phase, keep training the dense model without pruning for the same epochs as the remaining phases,
        all at the schedule's final learning rate (no decay). Phase boundaries are kept, so every DSD row
        has a fine-tuning row at the same cumulative epochs."""
        first, *rest = self.phases
        final_lr = self.phases[-1].lr
        tail = (Phase(kind=DENSE, epochs=p.epochs, lr=final_lr) for p in rest)
        return Schedule((first, *tail))

    def to_list(self) -> list[dict]:
        return [asdict(p) for p in self.phases]

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse the compact form, e.g. ``D10:1e-3,S10@0.5:1e-4,D10:1e-5`` (``~0.9`` adds an lr decay)."""
        phases = []
        for i, item in enumerate(t.strip() for t in text.split(",")):
            m = _COMPACT.match(item)
            if not m:
                raise ScheduleError(
                    f"schedule phase {i + 1}: cannot parse {item!r}; expected D<epochs>:<lr> or "
                    "S<epochs>@<sparsity>:<lr>, e.g. 'D10:1e-3,S10@0.5:1e-4,D10:1e-5'"
                )
            kind = DENSE if m["kind"] == "D" else SPARSE
            if kind == SPARSE and m["sparsity"] is None:
                raise ScheduleError(f"schedule phase {i + 1}: sparse phase {item!r} needs @<sparsity>")
            if kind == DENSE and m["sparsity"] is not None:
                raise ScheduleError(f"schedule phase {i + 1}: dense phase {item!r} takes no @<sparsity>")
            phases.append(
                Phase(
                    kind=kind,
                    epochs=int(m["epochs"]),
                    lr=_number(m["lr"], i),
                    sparsity=_number(m["sparsity"], i) if m["sparsity"] else 0.0,
                    lr_decay=_number(m["decay"], i) if m["decay"] else 1.0,
                )
            )
        return cls(tuple(phases))

    @classmethod
    def from_config(cls, value: str | Sequence[Mapping]) -> Schedule:
        """Accept the compact string or a YAML list of ``{kind, epochs, lr, sparsity, lr_decay}``."""
        if isinstance(value, str):
            return cls.parse(value)
        if not isinstance(value, Sequence):
            raise ScheduleError(f"schedule: expected a compact string or a list of phases, got {value!r}")
        allowed = {"kind", "epochs", "lr", "sparsity", "lr_decay"}
        phases = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise ScheduleError(f"schedule phase {i + 1}: expected a mapping, got {item!r}")
            unknown = set(item) - allowed
            if unknown:
                raise ScheduleError(
                    f"schedule phase {i + 1}: unknown key(s) {sorted(unknown)}; accepted: {sorted(allowed)}"
                )
            missing = {"kind", "epochs", "lr"} - set(item)
            if missing:
                raise ScheduleError(f"schedule phase {i + 1}: missing key(s) {sorted(missing)}")
            phases.append(
                Phase(
                    **{
                        k: (_number(str(v), i) if k in ("lr", "sparsity", "lr_decay") else v)
                        for k, v in item.items()
                    }
                )
            )
        return cls(tuple(phases))


def _number(text: str, index: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise ScheduleError(f"schedule phase {index + 1}: {text!r} is not a number") from None
