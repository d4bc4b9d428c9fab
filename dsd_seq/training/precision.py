"""Mixed precision for the training step: ``fp32``, ``bf16`` or ``fp16`` autocast (``train.precision``).

The weights, their gradients and the optimizer state stay fp32; autocast runs the forward pass in the
lower precision. So masking is unchanged: DSD multiplies the fp32 master weights by the mask after every
step and pruned weights stay exactly 0.0 whatever precision the forward pass used.

fp16 needs loss scaling (its gradients underflow otherwise). The order of one step is
``scale(loss).backward() -> mask gradients -> unscale_ -> clip -> step -> update -> apply masks``:
masking before unscaling keeps pruned positions out of the scaler's inf check and out of the clip norm.
When the scaler finds an inf/NaN gradient it skips the optimizer step and halves the scale; such a
*scale overflow* is routine for fp16 and is not a failed step (see :meth:`Precision.step`).
bf16 has fp32's range and needs no scaler.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast and (for fp16) the gradient scaler of one training run."""

    def __init__(self, name: str, device: torch.device):
        if name not in PRECISIONS:
            raise ValueError(f"train.precision={name!r}; accepted: {list(PRECISIONS)}")
        self.name = name
        self.device = device
        self.dtype = PRECISIONS[name]
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for the loss forward pass (a no-op in fp32)."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring the gradients back to their true size (before clipping); a no-op without a scaler."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """``optimizer.step()`` (and the scaler's update); False if the scaler skipped it for an inf/NaN
        gradient. The scale halves on every skip, so a skip that happens at a scale below 1 means the
        gradient itself is not finite: :meth:`gradient_is_broken` tells the two apart."""
        if self.scaler is None:
            optimizer.step()
            return True
        before = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= before

    def gradient_is_broken(self) -> bool:
        """After a skipped step: True once the scale has fallen below 1, i.e. the gradient overflows
        even unscaled (a NaN/inf from the data or the model, not fp16's range)."""
        return self.scaler is not None and self.scaler.get_scale() < 1.0

    @property
    def scale(self) -> float:
        return self.scaler.get_scale() if self.scaler is not None else 1.0

    def state_dict(self) -> dict:
        return {"scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
