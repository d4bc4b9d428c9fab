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

    def __init__(
        self,
        rule: Ramp | Redraw,
        sparsity: float,
        step: int = 0,
        steps: int | None = None,
        finished: bool = False,
    ):
        self.rule, self.sparsity = rule, sparsity
        self.step = step  # optimizer steps taken in the phase
        self.steps = steps  # the phase's length in optimizer steps; None until planned
        self.finished = finished  # the phase has ended (DSD.finish_phase): nothing more to complete

    def plan(self, steps: int) -> bool:
        """Set the phase's length (the first plan holds); returns whether this call set it."""
        if steps < 1:
            rule = "gradual" if isinstance(self.rule, Ramp) else self.rule.method
            raise ValueError(
                f"a {rule} phase (to sparsity {self.sparsity:g}) changes its masks with its optimizer steps, "
                f"so it needs at least one step; it was planned with {steps} (an epoch without batches?)"
            )
        if self.steps is not None:
            return False
        self.steps = int(steps)
        return True

    def short_phase_warning(self) -> str | None:
        """Why the planned phase is too short for its rule to do what it is named for, or None: a gradual
        ramp of ``K <= every`` steps prunes once (one-shot pruning at step K), a RigL/SET phase with
        ``end * T <= every`` never redraws (fixed-mask sparse training)."""
        steps = self._length()
        rule = self.rule
        if isinstance(rule, Ramp):
            last = rule.last_step(steps)
            if rule.every < last:
                return None
            return (
                f"gradual phase to sparsity {self.sparsity:g}: its ramp lasts end={rule.end:g} x {steps} "
                f"steps = {last} step(s) and every={rule.every}, so the masks are updated only once, at step "
                f"{last}: this is one-shot pruning, not a gradual ramp; set every below {last} (or lengthen "
                "the phase, or raise end)"
            )
        window = rule.end * steps
        if rule.every < window:
            return None
        return (
            f"{rule.method} phase at sparsity {self.sparsity:g}: it redraws during end={rule.end:g} x {steps} "
            f"steps = {window:g} step(s) and every={rule.every}, so its masks are never redrawn: this is "
            f"fixed-mask sparse training, not {rule.method}; set every below {window:g} (or lengthen the "
            "phase, or raise end)"
        )

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
        state = {kind: asdict(self.rule), "sparsity": self.sparsity, "step": self.step, "steps": self.steps}
        return {**state, "finished": True} if self.finished else state

    @classmethod
    def from_state(cls, state: Mapping) -> MaskUpdates:
        rule = Ramp(**state["ramp"]) if "ramp" in state else Redraw(**state["redraw"])
        return cls(
            rule, float(state["sparsity"]), int(state["step"]), state["steps"], bool(state.get("finished"))
        )
