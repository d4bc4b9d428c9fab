"""Where a phase whose masks change while it trains (gradual pruning's ramp, RigL/SET's redraws) is:
its optimizer steps so far and its length in steps, saved with the masks so that a run resumed mid-ramp
or mid-redraw takes the same updates at the same steps.

The phase's length is known once its steps per epoch are (``plan``: the trainer plans it at the phase's
first batch, a loop counting steps from its phase's epochs); the first plan holds, so a resumed run keeps
the length it started the phase with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

from dsd_seq.core.ramp import Ramp
from dsd_seq.core.redraw import Redraw


class MaskUpdates:
    """The in-phase mask schedule of one phase: ``rule`` (a :class:`Ramp` or :class:`Redraw`) towards
    the phase's ``sparsity``."""

    def __init__(self, rule: Ramp | Redraw, sparsity: float, step: int = 0, steps: int | None = None):
        self.rule, self.sparsity = rule, sparsity
        self.step = step  # optimizer steps taken in the phase
        self.steps = steps  # the phase's length in optimizer steps; None until planned

    def plan(self, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"a phase whose masks change needs at least one step, got {steps}")
        if self.steps is None:
            self.steps = int(steps)

    def _length(self) -> int:
        if self.steps is None:
            raise RuntimeError(
                "the masks of this phase change with its steps, but its length in steps is unknown: call "
                "DSD.plan_steps(epochs * steps_per_epoch) when the phase starts (PhaseDriver: pass "
                "steps_per_epoch, or count in steps)"
            )
        return self.steps

    def due(self, step: int) -> bool:
        """Whether the masks change after the phase's ``step``-th optimizer step."""
        return self.rule.updates_at(step, self._length())

    @property
    def wants_gradient(self) -> bool:
        """RigL: the next step redraws and grows by the dense gradient, which must be kept before masking."""
        return isinstance(self.rule, Redraw) and self.rule.grow == "gradient" and self.due(self.step + 1)

    def target(self) -> float:
        """The gradual phase's sparsity after the current step."""
        assert isinstance(self.rule, Ramp)
        return self.rule.sparsity_at(self.step, self._length(), self.sparsity)

    def drop_fraction(self) -> float:
        assert isinstance(self.rule, Redraw)
        return self.rule.drop_fraction(self.step, self._length())

    def state_dict(self) -> dict:
        kind = "ramp" if isinstance(self.rule, Ramp) else "redraw"
        return {kind: asdict(self.rule), "sparsity": self.sparsity, "step": self.step, "steps": self.steps}

    @classmethod
    def from_state(cls, state: Mapping) -> MaskUpdates:
        rule = Ramp(**state["ramp"]) if "ramp" in state else Redraw(**state["redraw"])
        return cls(rule, float(state["sparsity"]), int(state["step"]), state["steps"])
