"""The small interface between the DSD trainer and a model family (speech, captioning, a user's own).

The trainer never imports ``models`` or ``data_prep``: it calls these methods and nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn

from dsd_seq.training.config import ConfigError


class Task(Protocol):
    #: the network being trained; DSD prunes its parameters in place
    model: nn.Module
    #: the splits ``evaluate`` can score (``train.eval_splits`` may name only these)
    splits: Sequence[str]
    #: name of the main metric in ``evaluate``'s result (e.g. "wer", "bleu4")
    metric: str
    #: whether a larger ``metric`` is better (BLEU) or worse (WER)
    higher_is_better: bool

    def train_batches(self, generator: torch.Generator, epoch: int) -> Sequence[Any]:
        """All training batches of one epoch, in an order drawn from ``generator`` (for exact resume).

        ``epoch`` is the epoch's index counted from the run's start over all phases (e.g. to present the
        first epoch in length order, DeepSpeech 2's SortaGrad); a task may ignore it. The order must stay
        a function of ``generator`` and ``epoch`` alone.
        """

    def loss(self, batch: Any, device: torch.device, model: nn.Module) -> torch.Tensor:
        """Scalar training loss of one batch, computed by calling ``model``: ``self.model`` itself, or
        under torchrun its DistributedDataParallel wrapper (which averages the gradients over the
        processes), so a task must not call ``self.model`` here."""

    def evaluate(self, split: str, device: torch.device) -> dict[str, float]:
        """Metrics of the current model on a held-out split, e.g. {"wer": 12.3, "cer": 4.5}."""

    def data_summary(self) -> dict[str, Any]:
        """What the task loaded and what it skipped (counts per kind of problem), for the log."""

    # Optional, read with getattr:
    # - ``check_evaluation()``: build what evaluation needs (a decoder, a language model file) and raise
    #   a ValueError naming the setting if it cannot; the trainer calls it before the first step.
    # - ``resumable_changes``: task_args keys (e.g. "task_args.decoding") that change only evaluation, so
    #   a resumed run accepts new values for them (see dsd_seq.training.config.RESUMABLE_CHANGES).


def build_task(spec: str, task_args: dict):
    """Import ``module:factory`` and call it with the config's ``task_args``."""
    module_name, _, factory_name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"task {spec!r} cannot be imported ({err}); expected 'module:function'") from None
    return factory(**task_args)
