"""The DSD phase schedule: Dense, Sparse, Re-dense, iterated (DSDSD...).

A phase is ``{dense|sparse, epochs, lr, sparsity}``. The compact command-line form lists phases separated
by commas: ``D<epochs>:<lr>`` or ``S<epochs>@<sparsity>:<lr>``, e.g. the DeepSpeech 1 schedule of
Table 7 is ``D50:8e-4,S50@0.5:5e-4,D50:3e-4,S50@0.25:1e-4,D50:3e-5``.

A phase may instead end at convergence (Sec. 4: "When the loss no longer decreases, we stop the
training"), see :mod:`dsd_seq.core.convergence`: ``..<max>`` or ``<min>..<max>`` in place of the epochs,
then optional ``/key=value`` settings of the rule, e.g. ``D..40:1e-3`` (dev loss, patience 3, at most 40
epochs) or ``S2..20@0.5:1e-4/patience=2/min_delta=0.01/monitor=dev_wer``. In YAML the phase takes
``until: {monitor, patience, min_delta, min_epochs}`` and its ``epochs`` is the maximum.

The methods DSD is weighed against are schedule elements too (docs/methods/), each a sparse phase of
fixed length whose options follow ``/``:

- ``G<epochs>@<final sparsity>:<lr>/from=0/every=100/shape=cubic/end=0.75``: gradual magnitude pruning,
  the sparsity rising during the phase (:mod:`dsd_seq.core.ramp`); YAML ``kind: gradual``;
- ``R<epochs>@<sparsity>:<lr>/every=100/drop=0.3/grow=gradient/end=0.75``: RigL, masks redrawn every
  ``every`` steps (``grow=random``: SET) (:mod:`dsd_seq.core.redraw`); YAML ``kind: rigl`` or ``kind: set``;
- ``A<epochs>@<sparsity>:<lr>/warmup=W/period=P/finetune=F``: AC/DC, expanded into alternating dense and
  sparse phases (:mod:`dsd_seq.core.acdc`); YAML ``kind: acdc``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace

from dsd_seq.core.acdc import AcDc, AcDcError, AcDcPart
from dsd_seq.core.convergence import ConvergenceError, Until
from dsd_seq.core.ramp import Ramp, RampError
from dsd_seq.core.redraw import Redraw, RedrawError

DENSE = "dense"
SPARSE = "sparse"

_COMPACT = re.compile(
    r"^(?P<kind>[DSGRA])((?P<min>\d+)?(?P<until>\.\.))?(?P<epochs>\d+)(@(?P<sparsity>[0-9.eE+-]+))?"
    r":(?P<lr>[0-9.eE+-]+)(~(?P<decay>[0-9.eE+-]+))?(?P<options>(/[^/,]*)*)$"
)
#: the ``until`` settings the compact form's ``/key=value`` may set (the minimum is written ``<min>..``)
_COMPACT_UNTIL_KEYS = {"monitor": str, "patience": int, "min_delta": float}
#: each method element's settings (compact ``/key=value`` and YAML keys alike): the field set and its type
_METHOD_KEYS = {
    "G": {"from": ("start", float), "every": ("every", int), "shape": ("shape", str), "end": ("end", float)},
    "R": {"every": ("every", int), "drop": ("drop", float), "grow": ("grow", str), "end": ("end", float)},
    "A": {"warmup": ("warmup", int), "period": ("period", int), "finetune": ("finetune", int)},
}
#: YAML kinds of the method elements and their compact letters (``set`` is RigL growing at random)
_YAML_METHODS = {"gradual": "G", "rigl": "R", "set": "R", "acdc": "A"}
#: how results tables and ``dsd-seq schedule`` name each method's phases
METHOD_NAMES = {"gradual": "Gradual", "rigl": "RigL", "set": "SET", "acdc": "AC/DC"}


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
    ramp: Ramp | None = None  # a gradual phase: its sparsity rises while it trains
    redraw: Redraw | None = None  # a RigL/SET phase: its masks are redrawn while it trains
    acdc: AcDcPart | None = None  # a phase of an AC/DC element

    @property
    def method(self) -> str | None:
        """``gradual``, ``rigl``, ``set`` or ``acdc`` for a method's phase; None for DSD's own."""
        if self.ramp is not None:
            return "gradual"
        if self.redraw is not None:
            return self.redraw.method
        return "acdc" if self.acdc is not None else None

    @property
    def masks_change(self) -> bool:
        """Whether the masks change during the phase (a gradual or RigL/SET phase)."""
        return self.ramp is not None or self.redraw is not None

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
        self._validate_method(where)

    def _validate_method(self, where: str) -> None:
        if self.method is None:
            return
        if self.masks_change and self.kind != SPARSE:
            raise ScheduleError(f"{where}: a {self.method} phase is sparse, got kind {self.kind!r}")
        if self.ramp is not None and self.redraw is not None:
            raise ScheduleError(f"{where}: a phase either ramps its sparsity or redraws its masks, not both")
        if self.until is not None:
            raise ScheduleError(
                f"{where}: a {self.method} phase has a fixed length (its settings count the phase's steps); "
                "it cannot end at convergence"
            )
        try:
            if self.ramp is not None:
                self.ramp.validate(where, self.sparsity)
            if self.redraw is not None:
                self.redraw.validate(where)
            if self.acdc is not None:
                self.acdc.element.validate(where)
        except (RampError, RedrawError, AcDcError) as err:
            raise ScheduleError(str(err)) from None

    def lr_at(self, epoch_in_phase: int) -> float:
        return self.lr * self.lr_decay**epoch_in_phase

    def compact(self) -> str:
        epochs = str(self.epochs)
        if self.until is not None:
            epochs = f"{self.until.min_epochs if self.until.min_epochs > 1 else ''}..{self.epochs}"
        letter = "G" if self.ramp is not None else "R" if self.redraw is not None else None
        s = f"{letter or ('D' if self.kind == DENSE else 'S')}{epochs}"
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
        if letter is not None:
            s += _method_options(letter, self.ramp if letter == "G" else self.redraw)
        return s

    def to_dict(self) -> dict:
        """The phase as a plain mapping (checkpoints hold these); ``until`` only when the phase has one, so
        a fixed phase reads as it did before convergence-ended phases existed."""
        d = asdict(self)
        for key in ("until", "ramp", "redraw", "acdc"):
            if getattr(self, key) is None:
                del d[key]
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
        i = 0
        while i < len(self.phases):  # an AC/DC element's phases stand together, whole and in order
            part = self.phases[i].acdc
            if part is None:
                i += 1
                continue
            expected = _acdc_phases(part.element)
            if part.index != 0 or tuple(self.phases[i : i + len(expected)]) != tuple(expected):
                raise ScheduleError(
                    f"schedule phase {i + 1}: the phases of the AC/DC element {_acdc_compact(part.element)} "
                    "must stand together, whole and in order"
                )
            i += len(expected)

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
        """The paper's row names: Dense, Sparse, Re-dense; later iterations numbered (Sparse 2, ...). A
        gradual or RigL/SET phase is named by its method (Gradual, RigL, SET) in place of Sparse."""
        iteration = sum(p.kind == SPARSE for p in self.phases[: index + 1])
        if iteration == 0:
            return "Dense"
        phase = self.phases[index]
        if phase.kind == SPARSE:
            name = METHOD_NAMES[phase.method] if phase.masks_change else "Sparse"
        else:
            name = "Re-dense"
        return name if iteration == 1 else f"{name} {iteration}"

    def compact(self) -> str:
        """The compact form; an AC/DC element's phases are written as the element."""
        items, i = [], 0
        while i < len(self.phases):
            part = self.phases[i].acdc
            if part is None:
                items.append(self.phases[i].compact())
                i += 1
            else:
                items.append(_acdc_compact(part.element))
                i += len(part.element.parts())
        return ",".join(items)

    def describe(self, index: int) -> str | None:
        """What a method's phase does, in words, for ``dsd-seq schedule``; None for DSD's own phases."""
        phase = self.phases[index]
        if phase.ramp is not None:
            r = phase.ramp
            return (
                f"gradual pruning: sparsity {r.start:g} -> {phase.sparsity:g} ({r.shape}) over the first "
                f"{r.end:g} of the phase's steps, masks recomputed by magnitude every {r.every} steps, then held"
            )
        if phase.redraw is not None:
            r = phase.redraw
            grow = "largest |gradient|" if r.grow == "gradient" else "at random"
            return (
                f"{METHOD_NAMES[r.method]}: every {r.every} steps until {r.end:g} of the phase, each layer drops "
                f"the smallest |w| (fraction {r.drop:g}, cosine-decayed) and grows as many {grow}, at zero"
            )
        if phase.acdc is not None:
            e = phase.acdc.element
            warmup, period, finetune = e.resolved
            what = "decompressed (dense)" if phase.kind == DENSE else "compressed (masks by magnitude)"
            return (
                f"AC/DC part {phase.acdc.index + 1}/{len(e.parts())}: {what}; element {_acdc_compact(e)} "
                f"(warmup {warmup}, period {period}, finetune {finetune} epochs)"
            )
        return None

    def llr(self) -> Schedule:
        """The LLR baseline (Sec. 5.2): the same epochs and learning rates, no pruning. Continued from a
        shared dense baseline it is also the paper's fine-tuning control (Appendix A, Table 10: "the same
        hyper-parameters and settings", 45 epochs at LR 0.001 and 45 at 0.0001, as DSD's own phases).
        Phases that end at convergence keep their rule: the paper's wording, "drop the learning rate upon
        convergence and continue"; for equal epochs take the LLR of :meth:`realized`."""
        return Schedule(
            tuple(
                replace(p, kind=DENSE, sparsity=0.0, ramp=None, redraw=None, acdc=None) for p in self.phases
            )
        )

    def final_lr_control(self) -> Schedule:
        """A control of this toolkit, not the paper's: after the first (dense) phase, keep training the
        dense model without pruning for the same epochs as the remaining phases, all at the schedule's
        final learning rate (no decay). Phase boundaries are kept, so every DSD row has a row at the same
        cumulative epochs. (The paper's own control, Appendix A's "conventional fine-tuning ... with the
        same hyper-parameters", is :meth:`llr` continued from a shared dense baseline.)"""
        first, *rest = self.phases
        final_lr = self.phases[-1].lr
        tail = (Phase(kind=DENSE, epochs=p.epochs, lr=final_lr, until=p.until) for p in rest)
        return Schedule((replace(first, acdc=None), *tail))  # an AC/DC element's first phase, on its own

    def to_list(self) -> list[dict]:
        return [p.to_dict() for p in self.phases]

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse the compact form, e.g. ``D10:1e-3,S10@0.5:1e-4,D10:1e-5`` (``~0.9`` adds an lr decay)."""
        phases: list[Phase] = []
        for i, item in enumerate(t.strip() for t in text.split(",")):
            m = _COMPACT.match(item)
            if not m:
                raise ScheduleError(
                    f"schedule phase {i + 1}: cannot parse {item!r}; expected D<epochs>:<lr> or "
                    "S<epochs>@<sparsity>:<lr> (or a method: G, R, A; see docs/methods/), e.g. "
                    "'D10:1e-3,S10@0.5:1e-4,D10:1e-5'"
                )
            letter = m["kind"]
            if letter != "D" and m["sparsity"] is None:
                raise ScheduleError(f"schedule phase {i + 1}: sparse phase {item!r} needs @<sparsity>")
            if letter == "D" and m["sparsity"] is not None:
                raise ScheduleError(f"schedule phase {i + 1}: dense phase {item!r} takes no @<sparsity>")
            lr = _number(m["lr"], i)
            sparsity = _number(m["sparsity"], i) if m["sparsity"] else 0.0
            decay = _number(m["decay"], i) if m["decay"] else 1.0
            if letter in _METHOD_KEYS:
                if m["until"]:
                    raise ScheduleError(
                        f"schedule phase {i + 1}: {item!r}: a method's phase has a fixed length (its settings "
                        "count the phase's steps); write its epochs without '..'"
                    )
                options = {}
                for option in filter(None, m["options"].split("/")):
                    key, sep, raw = option.partition("=")
                    if not sep:
                        raise ScheduleError(
                            f"schedule phase {i + 1}: {option!r} in {item!r} is not key=value"
                        )
                    options[key] = raw
                phases.extend(
                    _method_phases(letter, int(m["epochs"]), lr, sparsity, decay, options, item, len(phases))
                )
                continue
            if m["options"] and not m["until"]:
                raise ScheduleError(
                    f"schedule phase {i + 1}: {item!r} has /settings of a convergence rule but fixed epochs; "
                    f"write ..<max epochs>, e.g. {m['kind']}..{m['epochs']}"
                )
            phases.append(
                Phase(
                    kind=DENSE if letter == "D" else SPARSE,
                    epochs=int(m["epochs"]),
                    lr=lr,
                    sparsity=sparsity,
                    lr_decay=decay,
                    until=_compact_until(m, item, i) if m["until"] else None,
                )
            )
        return cls(tuple(phases))

    @classmethod
    def from_config(cls, value: str | Sequence[Mapping]) -> Schedule:
        """Accept the compact string or a YAML list of ``{kind, epochs, lr, sparsity, lr_decay}``; a
        method's phase (``kind: gradual | rigl | set | acdc``) takes its settings as keys beside them."""
        if isinstance(value, str):
            return cls.parse(value)
        if not isinstance(value, Sequence):
            raise ScheduleError(f"schedule: expected a compact string or a list of phases, got {value!r}")
        allowed = {"kind", "epochs", "lr", "sparsity", "lr_decay", "until"}
        phases: list[Phase] = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise ScheduleError(f"schedule phase {i + 1}: expected a mapping, got {item!r}")
            letter = _YAML_METHODS.get(item.get("kind"))  # type: ignore[arg-type]
            accepted = allowed | set(_METHOD_KEYS[letter]) if letter else allowed
            if letter:
                accepted = accepted - {"until"} | ({"grow"} if item.get("kind") == "set" else set())
            unknown = set(item) - accepted
            if unknown:
                raise ScheduleError(
                    f"schedule phase {i + 1}: unknown key(s) {sorted(unknown)}; accepted: {sorted(accepted)}"
                )
            missing = {"kind", "epochs", "lr"} - set(item)
            if missing:
                raise ScheduleError(f"schedule phase {i + 1}: missing key(s) {sorted(missing)}")
            if letter:
                if "sparsity" not in item:
                    raise ScheduleError(f"schedule phase {i + 1}: a {item['kind']} phase needs a sparsity")
                options = {k: v for k, v in item.items() if k in _METHOD_KEYS[letter]}
                if item["kind"] == "set" and options.setdefault("grow", "random") != "random":
                    raise ScheduleError(
                        f"schedule phase {i + 1}: kind set grows at random (grow={options['grow']!r}); "
                        "for gradient growth write kind: rigl"
                    )
                phases.extend(
                    _method_phases(
                        letter, item["epochs"], _number(str(item["lr"]), i),
                        _number(str(item["sparsity"]), i), _number(str(item.get("lr_decay", 1.0)), i),
                        options, f"kind {item['kind']}", len(phases),
                    )
                )  # fmt: skip
                continue
            values = {
                k: (_number(str(v), i) if k in ("lr", "sparsity", "lr_decay") else v)
                for k, v in item.items()
                if k != "until"
            }
            if item.get("until") is not None:
                values["until"] = _yaml_until(item["until"], i)
            phases.append(Phase(**values))
        return cls(tuple(phases))


def _method_phases(
    letter: str,
    epochs: object,
    lr: float,
    sparsity: float,
    decay: float,
    options: Mapping[str, object],
    item: str,
    index: int,
) -> list[Phase]:
    """The phases of one method element (one, or an AC/DC element's several), its settings checked:
    every message names the phase and the setting."""
    where = f"schedule phase {index + 1} ({item})"
    Phase(SPARSE, epochs, lr, sparsity, decay).validate(where)  # type: ignore[arg-type]
    settings = method_settings(letter, options, where, index)
    if letter == "G":
        return [Phase(SPARSE, epochs, lr, sparsity, decay, ramp=Ramp(**settings))]  # type: ignore[arg-type]
    if letter == "R":
        return [Phase(SPARSE, epochs, lr, sparsity, decay, redraw=Redraw(**settings))]  # type: ignore[arg-type]
    element = AcDc(epochs, sparsity, lr, decay, **settings)  # type: ignore[arg-type]
    try:
        element.validate(where)
    except AcDcError as err:
        raise ScheduleError(str(err)) from None
    return _acdc_phases(element)


def method_settings(letter: str, options: Mapping[str, object], where: str, index: int = 0) -> dict:
    """A method element's ``key=value`` settings (``letter``: G, R or A) as the fields of its settings
    class, typed; an unknown key is refused naming the accepted ones."""
    keys = _METHOD_KEYS[letter]
    settings = {}
    for key, raw in options.items():
        if key not in keys:
            raise ScheduleError(
                f"{where}: {key!r} is not a setting of this element; accepted: {', '.join(keys)}"
            )
        field, kind = keys[key]
        settings[field] = _typed(kind, raw, key, index)
    return settings


def _acdc_phases(element: AcDc) -> list[Phase]:
    """The element's phases; each starts at the learning rate the element's decay has reached."""
    phases, offset = [], 0
    for index, (kind, epochs) in enumerate(element.parts()):
        phases.append(
            Phase(
                kind, epochs, element.lr * element.lr_decay**offset,
                element.sparsity if kind == SPARSE else 0.0, element.lr_decay,
                acdc=AcDcPart(element, index),
            )
        )  # fmt: skip
        offset += epochs
    return phases


def _acdc_compact(element: AcDc) -> str:
    s = f"A{element.epochs}@{element.sparsity:g}:{element.lr:g}"
    if element.lr_decay != 1.0:
        s += f"~{element.lr_decay:g}"
    for key in _METHOD_KEYS["A"]:
        if getattr(element, key) is not None:
            s += f"/{key}={getattr(element, key)}"
    return s


def _method_options(letter: str, settings: Ramp | Redraw | None) -> str:
    """A gradual or RigL/SET phase's settings that differ from the defaults, as ``/key=value``."""
    default = type(settings)()
    out = ""
    for key, (field, _) in _METHOD_KEYS[letter].items():
        value = getattr(settings, field)
        if value != getattr(default, field):
            out += f"/{key}={value:g}" if isinstance(value, float) else f"/{key}={value}"
    return out


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
