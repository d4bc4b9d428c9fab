"""The optimizer a run config names (``train.optimizer``), over the model's trainable parameters.

Its learning rate starts at 1.0 as a placeholder: the DSD controller sets each phase's (and each epoch's)
rate from the schedule (:meth:`dsd_seq.core.dsd.DSD.set_lr`).
"""

from __future__ import annotations

import torch

from dsd_seq.training.config import RunConfig


def build_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    t = config.train
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer in ("sgd", "nesterov"):
        return torch.optim.SGD(
            params,
            lr=1.0,
            momentum=t.momentum,
            nesterov=t.optimizer == "nesterov",
            weight_decay=t.weight_decay,
        )
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=1.0, weight_decay=t.weight_decay)
    if t.optimizer == "rmsprop":
        # NeuralTalk's solver (Karpathy & Fei-Fei; its driver's defaults): squared-gradient decay 0.999,
        # epsilon 1e-8, no momentum; the DSD paper retrains NeuralTalk with its original settings (Sec. 4.4)
        return torch.optim.RMSprop(params, lr=1.0, alpha=0.999, eps=1e-8, weight_decay=t.weight_decay)
    return torch.optim.AdamW(params, lr=1.0, weight_decay=t.weight_decay)
