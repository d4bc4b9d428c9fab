"""Drive a DSD ``Schedule`` from a loop you do not own: enter each phase when the epoch (or optimizer
step) count reaches it, set the phase's learning rate, and remember where it is for exact resumes.

    driver = PhaseDriver(dsd, "D10:1e-3,S10@0.5:1e-3,D10:1e-4")   # unit="step": counts optimizer steps
    for epoch in range(driver.schedule.total_epochs):
        driver.advance(epoch)                                        # prunes at 10, re-densifies at 20
        ...

The driver never re-enters the phase it is in, so a run restored with ``load_state_dict`` keeps its masks
instead of pruning again from the restored weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dsd_seq.core.dsd import DSD
from dsd_seq.core.schedule import Phase, Schedule

UNITS = ("epoch", "step")


class PhaseDriver:
    """Maps a position (epochs or optimizer steps done) to a phase of the schedule and enters it.

    ``schedulers``: LR schedulers on the same optimizer. Their base LR becomes the phase's LR on every
    phase change, so a constant schedule keeps the phase LR and a decaying one scales it (from its next
    ``step()``); without this, a closed-form scheduler such as ``LambdaLR`` would overwrite the phase LR.
    """

    def __init__(
        self,
        dsd: DSD,
        schedule: Schedule | str,
        unit: str = "epoch",
        schedulers: Sequence = (),
        steps_per_epoch: int | None = None,
    ):
        if unit not in UNITS:
            raise ValueError(f"PhaseDriver: unit must be one of {UNITS}, got {unit!r}")
        self.dsd = dsd
        self.schedule = Schedule.parse(schedule) if isinstance(schedule, str) else schedule
        self.unit = unit
        self.schedulers = list(schedulers)
        self.steps_per_epoch = steps_per_epoch  # a gradual or RigL/SET phase counted in epochs needs it
        self.phase_index: int | None = None
        self.position: int | None = None
        self._starts = [sum(p.epochs for p in self.schedule.phases[:i]) for i in range(len(self.schedule))]

    @property
    def phase(self) -> Phase | None:
        return None if self.phase_index is None else self.schedule[self.phase_index]

    @property
    def label(self) -> str:
        """The paper's row name of the current phase (Dense, Sparse, Re-dense, Sparse 2 ...)."""
        return "-" if self.phase_index is None else self.schedule.label(self.phase_index)

    def locate(self, position: int) -> tuple[int, int]:
        """(phase index, offset inside it) of ``position``; past the schedule's end the last phase goes on."""
        if position < 0:
            raise ValueError(f"PhaseDriver: position must be >= 0, got {position}")
        index = max(i for i, start in enumerate(self._starts) if start <= position)
        return index, position - self._starts[index]

    def advance(self, position: int) -> Phase | None:
        """Call at the start of every epoch (``unit="epoch"``) or optimizer step (``unit="step"``) with the
        number done so far. Enters the phase holding ``position`` if it is not the current one and sets
        the learning rate (with the phase's ``lr_decay``). Returns the phase entered, else None."""
        index, offset = self.locate(position)
        phase = self.schedule[index]
        entered = None
        if index != self.phase_index:
            current = -1 if self.phase_index is None else self.phase_index
            if index != current + 1:
                what = "no phase" if self.phase_index is None else f"phase {current + 1}"
                raise RuntimeError(
                    f"PhaseDriver: {self.unit} {position} lies in phase {index + 1} "
                    f"({phase.compact()}) but {what} was entered before it; phases cannot be skipped "
                    "(a sparse phase would never prune). Call advance() at every "
                    f"{self.unit}, or load_state_dict() from the checkpoint you resume from first."
                )
            self.dsd.enter(phase)
            if phase.masks_change:
                self.dsd.plan_steps(self._phase_steps(phase))
            self.phase_index = index
            entered = phase
        if entered is not None or (phase.lr_decay != 1.0 and position != self.position):
            self.set_lr(phase.lr_at(offset))
        self.position = position
        return entered

    def _phase_steps(self, phase: Phase) -> int:
        if self.unit == "step":
            return phase.epochs
        if not self.steps_per_epoch:
            raise ValueError(
                f"PhaseDriver: phase {phase.compact()} changes its masks with its steps; counted in epochs "
                "it needs steps_per_epoch (optimizer steps per epoch), or count the schedule in steps"
            )
        return phase.epochs * self.steps_per_epoch

    def set_lr(self, lr: float) -> None:
        self.dsd.set_lr(lr)
        for scheduler in self.schedulers:
            scheduler.base_lrs = [lr] * len(scheduler.base_lrs)
            if hasattr(
                scheduler, "_last_lr"
            ):  # what get_last_lr() reports (Hugging Face logs it) until step()
                scheduler._last_lr = [lr] * len(scheduler.base_lrs)
        for group in self.dsd.optimizer.param_groups:
            if "initial_lr" in group:
                group["initial_lr"] = lr

    def state_dict(self) -> dict:
        return {
            "unit": self.unit,
            "schedule": self.schedule.compact(),
            "phase_index": self.phase_index,
            "position": self.position,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore where the run was; the DSD masks are restored by ``DSD.load_state_dict``."""
        for key in ("unit", "schedule"):
            saved = state.get(key)
            mine = self.unit if key == "unit" else self.schedule.compact()
            if saved != mine:
                raise ValueError(
                    f"PhaseDriver.load_state_dict: the checkpoint's {key} is {saved!r} but this run's is "
                    f"{mine!r}; resume with the {key} the run was started with"
                )
        self.phase_index = state["phase_index"]
        self.position = state["position"]
