"""The DSD phase schedule: Dense, Sparse, Re-dense, iterated (DSDSD...).

A phase is ``{dense|sparse, epochs, lr, sparsity}``. The compact command-line form lists phases separated
by commas: ``D<epochs>:<lr>`` or ``S<epochs>@<sparsity>:<lr>``, e.g. the DeepSpeech 1 schedule of
Table 7 is ``D50:8e-4,S50@0.5:5e-4,D50:3e-4,S50@0.25:1e-4,D50:3e-5``.

A phase may instead end at convergence (Sec. 4: "When the loss no longer decreases, we stop the
training"), see :mod:`dsd_seq.core.convergence`: ``..<max>`` or ``<min>..<max>`` in place of the epochs,
then optional ``/key=value`` settings of the rule, e.g. ``D..40:1e-3`` (dev loss, patience 3, at most 40
epochs) or ``S2..20@0.5:1e-4/patience=2/min_delta=0.01/monitor=dev_wer``. In YAML the phase takes
``until: {monitor, patience, min_delta, min_epochs}`` and its ``epochs`` is the maximum.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace

from dsd_seq.core.convergence import ConvergenceError, Until

DENSE = "dense"
SPARSE = "sparse"

_COMPACT = re.compile(
    r"^(?P<kind>[DS])((?P<min>\d+)?(?P<until>\.\.))?(?P<epochs>\d+)(@(?P<sparsity>[0-9.eE+-]+))?"
    r":(?P<lr>[0-9.eE+-]+)(~(?P<decay>[0-9.eE+-]+))?(?P<options>(/[^/,]*)*)$"
)
#: the ``until`` settings the compact form's ``/key=value`` may set (the minimum is written ``<min>..``)
_COMPACT_UNTIL_KEYS = {"monitor": str, "patience": int, "min_delta": float}


class ScheduleError(ValueError):
    """A schedule that cannot be run; the message names the phase and the accepted values."""


@dataclass(frozen=True)
class Phase:
    """One phase of training. ``lr_decay`` multiplies the learning rate after every epoch of the phase.
    With ``until`` the phase ends at convergence and ``epochs`` is its maximum."""

    kind: str
    epochs: int
    lr: float
    sparsity: float = 0.0
    lr_decay: float = 1.0
    until: Until | None = None

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
        if self.until is not None:
            if not isinstance(self.until, Until):
                raise ScheduleError(f"{where}: until must be a convergence rule, got {self.until!r}")
            try:
                self.until.validate(where, self.epochs)
            except ConvergenceError as err:
                raise ScheduleError(str(err)) from None

    def lr_at(self, epoch_in_phase: int) -> float:
        return self.lr * self.lr_decay**epoch_in_phase

    def compact(self) -> str:
        epochs = str(self.epochs)
        if self.until is not None:
            epochs = f"{self.until.min_epochs if self.until.min_epochs > 1 else ''}..{self.epochs}"
        s = f"{'D' if self.kind == DENSE else 'S'}{epochs}"
        if self.kind == SPARSE:
            s += f"@{self.sparsity:g}"
        s += f":{self.lr:g}"
        if self.lr_decay != 1.0:
            s += f"~{self.lr_decay:g}"
        if self.until is not None:
            default = Until()
            for key in _COMPACT_UNTIL_KEYS:
                value = getattr(self.until, key)
                if value != getattr(default, key):
                    s += f"/{key}={value:g}" if isinstance(value, float) else f"/{key}={value}"
        return s

    def to_dict(self) -> dict:
        """The phase as a plain mapping (checkpoints hold these); ``until`` only when the phase has one, so
        a fixed phase reads as it did before convergence-ended phases existed."""
        d = asdict(self)
        if self.until is None:
            del d["until"]
        return d


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
        """The epochs of all phases (for a phase that ends at convergence, its maximum)."""
        return sum(p.epochs for p in self.phases)

    @property
    def ends_at_convergence(self) -> bool:
        return any(p.until is not None for p in self.phases)

    def realized(self, epochs: Sequence[int]) -> Schedule:
        """The fixed-epoch schedule a run of this one actually trained: phase i ran ``epochs[i]`` epochs
        (the phases beyond ``epochs`` keep theirs). Its LLR and fine-tune baselines have equal epochs."""
        if len(epochs) > len(self.phases):
            raise ScheduleError(
                f"{len(epochs)} realized phase lengths {list(epochs)} for the {len(self.phases)} phases of "
                f"{self.compact()}"
            )
        phases = list(self.phases)
        for i, n in enumerate(epochs):
            if not isinstance(n, int) or not 1 <= n <= phases[i].epochs:
                raise ScheduleError(
                    f"schedule phase {i + 1} ({phases[i].compact()}): realized epochs {n!r} are not in "
                    f"1..{phases[i].epochs}"
                )
            phases[i] = replace(phases[i], epochs=n, until=None)
        return Schedule(tuple(phases))

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
        """The LLR baseline (Sec. 5.2): the same epochs and learning rates, no pruning. Continued from a
        shared dense baseline it is also the paper's fine-tuning control (Appendix A, Table 10: "the same
        hyper-parameters and settings", 45 epochs at LR 0.001 and 45 at 0.0001, as DSD's own phases).
        Phases that end at convergence keep their rule: the paper's wording, "drop the learning rate upon
        convergence and continue"; for equal epochs take the LLR of :meth:`realized`."""
        return Schedule(tuple(replace(p, kind=DENSE, sparsity=0.0) for p in self.phases))

    def final_lr_control(self) -> Schedule:
        """A control of this toolkit, not the paper's: after the first (dense) phase, keep training the
        dense model without pruning for the same epochs as the remaining phases, all at the schedule's
        final learning rate (no decay). Phase boundaries are kept, so every DSD row has a row at the same
        cumulative epochs. (The paper's own control, Appendix A's "conventional fine-tuning ... with the
        same hyper-parameters", is :meth:`llr` continued from a shared dense baseline.)"""
        first, *rest = self.phases
        final_lr = self.phases[-1].lr
        tail = (Phase(kind=DENSE, epochs=p.epochs, lr=final_lr, until=p.until) for p in rest)
        return Schedule((first, *tail))

    def to_list(self) -> list[dict]:
        return [p.to_dict() for p in self.phases]

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
            if m["options"] and not m["until"]:
                raise ScheduleError(
                    f"schedule phase {i + 1}: {item!r} has /settings of a convergence rule but fixed epochs; "
                    f"write ..<max epochs>, e.g. {m['kind']}..{m['epochs']}"
                )
            phases.append(
                Phase(
                    kind=kind,
                    epochs=int(m["epochs"]),
                    lr=_number(m["lr"], i),
                    sparsity=_number(m["sparsity"], i) if m["sparsity"] else 0.0,
                    lr_decay=_number(m["decay"], i) if m["decay"] else 1.0,
                    until=_compact_until(m, item, i) if m["until"] else None,
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
        allowed = {"kind", "epochs", "lr", "sparsity", "lr_decay", "until"}
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
            values = {
                k: (_number(str(v), i) if k in ("lr", "sparsity", "lr_decay") else v)
                for k, v in item.items()
                if k != "until"
            }
            if item.get("until") is not None:
                values["until"] = _yaml_until(item["until"], i)
            phases.append(Phase(**values))
        return cls(tuple(phases))


def _number(text: str, index: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise ScheduleError(f"schedule phase {index + 1}: {text!r} is not a number") from None


def _compact_until(m: re.Match, item: str, index: int) -> Until:
    """The rule of a compact ``[<min>]..<max>`` phase and its ``/key=value`` settings."""
    values: dict = {"min_epochs": int(m["min"])} if m["min"] else {}
    for option in filter(None, m["options"].split("/")):
        key, sep, raw = option.partition("=")
        if not sep or key not in _COMPACT_UNTIL_KEYS:
            raise ScheduleError(
                f"schedule phase {index + 1}: {option!r} in {item!r} is not a convergence setting; accepted: "
                f"{', '.join(k + '=...' for k in _COMPACT_UNTIL_KEYS)} (the minimum epochs: <min>..<max>)"
            )
        values[key] = _typed(_COMPACT_UNTIL_KEYS[key], raw, f"{key} in {item!r}", index)
    return Until(**values)


def _yaml_until(value: object, index: int) -> Until:
    """``until: {monitor, patience, min_delta, min_epochs}`` of a YAML phase (``{}``: every default)."""
    if not isinstance(value, Mapping):
        raise ScheduleError(
            f"schedule phase {index + 1}: until must be a mapping such as {{monitor: dev_loss, patience: 3}}, "
            f"got {value!r}"
        )
    types = {f.name: {"str": str, "int": int, "float": float}[str(f.type)] for f in fields(Until)}
    unknown = set(value) - set(types)
    if unknown:
        raise ScheduleError(
            f"schedule phase {index + 1}: unknown until key(s) {sorted(unknown)}; accepted: {sorted(types)}"
        )
    return Until(**{k: _typed(types[k], v, f"until.{k}", index) for k, v in value.items()})


def _typed(kind: type, value: object, where: str, index: int) -> object:
    if kind is float:
        return _number(str(value), index)
    if kind is int:
        if isinstance(value, bool):
            raise ScheduleError(f"schedule phase {index + 1}: {where} must be an integer, got {value!r}")
        try:
            return int(str(value))
        except ValueError:
            raise ScheduleError(
                f"schedule phase {index + 1}: {where} must be an integer, got {value!r}"
            ) from None
    return str(value)
