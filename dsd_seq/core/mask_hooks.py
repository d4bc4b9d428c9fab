"""Keep DSD's masks in a training loop you do not own (Lightning, Hugging Face ``Trainer``), with torch
hooks instead of a wrapped ``step()``:

- after every ``optimizer.step()`` (a step post-hook) the masks are re-applied, so pruned weights are
  exactly 0 before the next forward pass; a step a GradScaler skips runs no hook and changes nothing;
- before every ``optimizer.step()`` (a step pre-hook) the gradients are masked, so momentum and Adam
  moments never build up at pruned positions;
- optionally as backward accumulates each gradient (``during_backward``), so a framework that clips
  gradients before its last hook (Hugging Face's ``Trainer``) leaves the pruned weights out of the norm.

Pitfall: a framework that calls ``optimizer.step(closure)`` (Lightning) runs the step pre-hook *before*
the closure's backward pass; there the gradients must be masked from the framework's own
before-optimizer-step hook, which runs inside the closure.
"""

from __future__ import annotations

import torch

from dsd_seq.core.dsd import DSD


class MaskHooks:
    """Registers the hooks on ``optimizer`` (the torch optimizer, not a framework's wrapper of it)."""

    def __init__(self, dsd: DSD, optimizer: torch.optim.Optimizer, during_backward: bool = False):
        self.dsd = dsd
        self._handles = [
            optimizer.register_step_pre_hook(lambda *_: dsd.mask_gradients()),
            optimizer.register_step_post_hook(lambda *_: (dsd.apply_masks(), dsd.end_step())),
        ]
        if during_backward:
            dsd.gradients_masked_in_backward = True
            for name, param in dsd.params.items():
                self._handles.append(param.register_post_accumulate_grad_hook(self._masker(name)))

    def _masker(self, name: str):
        def mask(param: torch.Tensor) -> None:
            masks = self.dsd.masks
            if masks is not None and param.grad is not None:
                self.dsd.keep_dense_gradient(name, param.grad)  # RigL grows by the unmasked gradient
                with torch.no_grad():
                    param.grad.mul_(masks.masks[name])

        return mask

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
