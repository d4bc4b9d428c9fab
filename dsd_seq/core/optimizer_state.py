"""What happens to the optimizer's state at a phase boundary: a stated choice, not an accident.

- ``at_phase="keep"`` (the default, as before): momentum and Adam moments carry over into the next phase
  (pruned weights' entries are zeroed by the masks either way).
- ``at_phase="reset"``: every tensor's state is dropped at each boundary, as SparseML's AC/DC resets
  momentum; the optimizer starts afresh (Adam's step count too, so its bias correction restarts).
- ``redense="reset_tensors"``: at re-dense, the whole state of every tensor that had a mask is dropped,
  step count included. Adam's step counter is per tensor, so under ``keep`` a revived weight (moments 0,
  step large) gets no bias correction: its first update is up to (1-beta1)/sqrt(1-beta2) = 3.2 x lr.
  Resetting the re-densed tensors restarts their bias correction, so revived weights move at the re-dense
  learning rate the schedule asks for (Sec. 2), at the price of the surviving weights' moments.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

AT_PHASE = ("keep", "reset")
REDENSE = ("keep", "reset_tensors")


def drop_state(optimizer: torch.optim.Optimizer, params: Iterable[torch.Tensor] | None = None) -> int:
    """Forget the optimizer's state of ``params`` (all of them when None); the next step initialises it
    as for a fresh optimizer. Returns how many tensors had state."""
    if params is None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
    return sum(optimizer.state.pop(p, None) is not None for p in params)


def at_boundary(
    optimizer: torch.optim.Optimizer,
    at_phase: str,
    redense: str,
    redensed: Iterable[torch.Tensor],
) -> str | None:
    """Apply the policies when a phase after the first starts; ``redensed`` are the tensors whose masks
    this phase lifts (empty unless it re-denses). Returns what was reset, for the log, or None."""
    if at_phase not in AT_PHASE or redense not in REDENSE:
        raise ValueError(f"optimizer state policy {at_phase!r}/{redense!r}; accepted: {AT_PHASE} / {REDENSE}")
    if at_phase == "reset":
        drop_state(optimizer)
        return "all"
    redensed = list(redensed)
    if redense == "reset_tensors" and redensed:
        drop_state(optimizer, redensed)
        return "redensed"
    return None
