"""The weights and optimizer state as they were before an optimizer step, to put back when the step made
them non-finite.

A finite loss and gradient can still produce NaN/inf weights: a learning rate so large that the update
overflows, or an optimizer state that overflows (Adam's second moment). Such a step must not count as a
step taken: the guarantee is that a skipped step leaves the weights as they were, and a checkpoint never
holds a non-finite weight. The copy is taken into buffers allocated once (one ``copy_`` per tensor, no
allocation per step) and read back only when the check after the step fails.
"""

from __future__ import annotations

import torch
from torch import nn


class PreStepCopy:
    """``take()`` before ``optimizer.step()``; then ``finite()`` and, if False, ``restore()``."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.params = [p for p in model.parameters()]
        self.optimizer = optimizer
        self._param_copies: list[torch.Tensor] = []
        self._state_copies: dict[int, dict] = {}  # id(param) -> its optimizer state before the step

    def take(self) -> None:
        with torch.no_grad():
            if not self._param_copies:
                self._param_copies = [torch.empty_like(p) for p in self.params]
            targets, sources = list(self._param_copies), list(self.params)
            kept: dict[int, dict] = {}
            for p, state in self.optimizer.state.items():
                old = self._state_copies.get(id(p), {})
                kept[id(p)] = copies = {}
                for key, value in state.items():
                    if not torch.is_tensor(value):
                        copies[key] = value
                        continue
                    buffer = old.get(key)
                    if not (
                        torch.is_tensor(buffer)
                        and buffer.shape == value.shape
                        and buffer.dtype == value.dtype
                    ):
                        buffer = torch.empty_like(value)
                    copies[key] = buffer
                    targets.append(buffer)
                    sources.append(value)
            self._state_copies = kept
            torch._foreach_copy_(targets, sources)  # one fused copy per device and dtype

    def finite(self) -> bool:
        """Whether every weight and every floating-point optimizer state tensor is finite. The fused 2-norm
        is NaN/inf when some element is (fast: one kernel per device and dtype); it also overflows for huge
        finite values, so a non-finite 2-norm is confirmed by the max-abs norm, which never overflows."""
        by_device: dict[torch.device, list[torch.Tensor]] = {}
        tensors = list(self.params)
        for state in self.optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v) and v.is_floating_point()]
        for t in tensors:
            by_device.setdefault(t.device, []).append(t.detach())
        return all(_all_finite(group) for group in by_device.values())

    def restore(self) -> None:
        """The weights and optimizer state as :meth:`take` found them (state created by the step dropped)."""
        with torch.no_grad():
            for copy, p in zip(self._param_copies, self.params, strict=True):
                p.copy_(copy)
            for p in list(self.optimizer.state):
                saved = self._state_copies.get(id(p))
                if saved is None:
                    del self.optimizer.state[p]
                    continue
                state = self.optimizer.state[p]
                for key, value in saved.items():
                    if torch.is_tensor(value) and torch.is_tensor(state.get(key)):
                        state[key].copy_(value)
                    else:
                        state[key] = value.clone() if torch.is_tensor(value) else value


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    if bool(torch.stack(torch._foreach_norm(tensors)).isfinite().all()):
        return True
    return bool(torch.stack(torch._foreach_norm(tensors, float("inf"))).isfinite().all())
