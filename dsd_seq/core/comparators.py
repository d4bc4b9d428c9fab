"""The methods DSD is weighed against, as equal-epoch arms of a DSD schedule: each keeps DSD's dense
phase, then trains the same epochs at the same learning rates as DSD's later phases.

- ``gmp`` (gradual magnitude pruning): each sparse phase becomes a gradual phase rising from the sparsity
  reached so far to its own; each later dense phase trains on at that sparsity with fixed masks (the
  fine-tuning a pruned model gets), so the arm ends as sparse as DSD's sparsest phase;
- ``rigl`` / ``set``: each sparse phase becomes a RigL (SET) phase at its sparsity, each later dense
  phase fixed-mask sparse training, as ``gmp``;
- ``acdc``: DSD's epochs after the dense phase become one AC/DC alternation (no warm-up: the dense phase
  is it) at DSD's largest sparsity, compressed and decompressed blocks of max(1, epochs // 20) epochs,
  the last 2 blocks' worth compressed (:class:`dsd_seq.core.acdc.AcDc`'s defaults); every epoch keeps the
  learning rate DSD's schedule has at that epoch, so AC/DC's phases also end at DSD's phase boundaries.

An arm takes its method's settings after its name, as a schedule element does: ``gmp/every=20/shape=linear``
(every, shape, end), ``rigl/every=50/drop=0.5`` and ``set/...`` (every, drop, end), ``acdc/period=2``
(period, finetune). A phase that ends at convergence has no fixed length to ramp or redraw over: compare
gives these arms the epochs DSD realized, as its LLR baseline (``Schedule.realized``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from dsd_seq.core.acdc import AcDc
from dsd_seq.core.ramp import Ramp
from dsd_seq.core.redraw import Redraw
from dsd_seq.core.schedule import DENSE, SPARSE, Phase, Schedule, ScheduleError, method_settings

#: the settings an arm accepts (the others follow from DSD's schedule): its element letter and keys
_ARM_SETTINGS = {
    "gmp": ("G", ("every", "shape", "end")),
    "rigl": ("R", ("every", "drop", "end")),
    "set": ("R", ("every", "drop", "end")),
    "acdc": ("A", ("period", "finetune")),
}


def _after_dense(schedule: Schedule, name: str) -> tuple[Phase, list[Phase]]:
    first, *rest = schedule.phases
    if first.kind != DENSE or not schedule.has_sparse_phase:
        raise ScheduleError(
            f"the {name} arm continues a DSD schedule's dense phase; {schedule.compact()} does not start "
            "dense with a sparse phase after it"
        )
    # the arm's phases stand alone: no convergence rule, no AC/DC element of DSD's schedule around them
    return replace(first, acdc=None), [replace(p, until=None, acdc=None) for p in rest]


def _sparse_arm(
    schedule: Schedule, name: str, sparse_phase: Callable[[Phase, float, float], Phase]
) -> Schedule:
    first, rest = _after_dense(schedule, name)
    phases, level = [first], 0.0
    for p in rest:
        if p.kind == SPARSE:
            target = max(level, p.sparsity)
            phases.append(sparse_phase(p, level, target))
            level = target
        elif level > 0.0:  # DSD re-densifies here: the arm trains on, sparse, with fixed masks
            phases.append(Phase(SPARSE, p.epochs, p.lr, level, p.lr_decay))
        else:
            phases.append(p)
    return Schedule(tuple(phases))


def gradual_arm(schedule: Schedule, settings: dict | None = None) -> Schedule:
    def gradual(p: Phase, level: float, target: float) -> Phase:
        ramp = Ramp(start=level, **(settings or {})) if target > level else None
        return Phase(SPARSE, p.epochs, p.lr, target, p.lr_decay, ramp=ramp)

    return _sparse_arm(schedule, "gmp", gradual)


def _redraw_arm(schedule: Schedule, grow: str, settings: dict | None) -> Schedule:
    def redraw(p: Phase, level: float, target: float) -> Phase:
        return Phase(SPARSE, p.epochs, p.lr, target, p.lr_decay, redraw=Redraw(grow=grow, **(settings or {})))

    return _sparse_arm(schedule, "rigl" if grow == "gradient" else "set", redraw)


def rigl_arm(schedule: Schedule, settings: dict | None = None) -> Schedule:
    return _redraw_arm(schedule, "gradient", settings)


def set_arm(schedule: Schedule, settings: dict | None = None) -> Schedule:
    return _redraw_arm(schedule, "random", settings)


def acdc_arm(schedule: Schedule, settings: dict | None = None) -> Schedule:
    first, rest = _after_dense(schedule, "acdc")
    sparsity = max(p.sparsity for p in rest)
    # the DSD phase and the offset in it of every epoch after the dense phase
    epochs = [(p, offset) for p in rest for offset in range(p.epochs)]
    element = AcDc(len(epochs), sparsity, rest[0].lr, warmup=0, **(settings or {}))
    try:
        element.validate(f"the acdc arm of {schedule.compact()}")
    except ValueError as err:
        raise ScheduleError(str(err)) from None
    phases, start = [first], 0
    for kind, length in element.parts():
        end = start + length
        while start < end:  # split at DSD's phase boundaries: each piece keeps DSD's learning rate
            dsd_phase, offset = epochs[start]
            piece = min(end, start + dsd_phase.epochs - offset) - start
            lr = dsd_phase.lr_at(offset)
            phases.append(Phase(kind, piece, lr, sparsity if kind == SPARSE else 0.0, dsd_phase.lr_decay))
            start += piece
    return Schedule(tuple(phases))


#: compare's method arms: how results tables name each, and its schedule from DSD's (and its settings)
ARMS: dict[str, tuple[str, Callable[..., Schedule]]] = {
    "gmp": ("Gradual", gradual_arm),
    "rigl": ("RigL", rigl_arm),
    "set": ("SET", set_arm),
    "acdc": ("AC/DC", acdc_arm),
}


def arm_name(text: str) -> str:
    """The arm an ``--arms`` entry or ``--baseline`` names: ``rigl/every=50`` -> ``rigl``."""
    return text.split("/", 1)[0].strip()


def arm_schedule(text: str, schedule: Schedule) -> Schedule:
    """The schedule of the arm ``text`` (a name in ``ARMS`` and its settings) for DSD's ``schedule``."""
    name, *options = [part.strip() for part in text.split("/")]
    if name not in ARMS:
        raise ScheduleError(f"arm {text!r}: accepted: {', '.join(ARMS)}, each with /key=value settings")
    letter, keys = _ARM_SETTINGS[name]
    given = {}
    for option in filter(None, options):
        key, sep, value = option.partition("=")
        if not sep or key not in keys:
            raise ScheduleError(
                f"arm {text!r}: {option!r} is not a setting of the {name} arm; accepted: "
                f"{', '.join(k + '=...' for k in keys)}"
            )
        given[key] = value
    return ARMS[name][1](schedule, method_settings(letter, given, f"arm {text!r}"))
