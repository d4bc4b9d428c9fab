"""Checkpoint averaging, the practitioner's other baseline: the mean of a phase's last or best N epochs.

Speech toolkits average the weights of the last few epochs before decoding (icefall's and ESPnet's
``--avg N``), a cheap gain that any claimed improvement should be set beside. ``train.average`` names the
rule (``last:N`` or ``best:N``, best by the phase's monitored dev value); each epoch's checkpoint of the
phase is then kept as ``phaseN-epochE.pt`` and every phase's row records the averaged model's scores.
``dsd-seq average RUN --phase N --last K`` (or ``--best K``; :mod:`dsd_seq.training.average_run`) writes
the averaged checkpoint itself.

Floating-point tensors are averaged in float64 and cast back; integer buffers (a batch norm's batch
count) are the newest epoch's. Within a sparse phase every epoch has the same mask, so the mean of its
pruned weights is exactly zero; the caller re-applies the masks all the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

AVERAGE_RULE = re.compile(r"(last|best):([1-9][0-9]*)")


class AverageError(ValueError):
    """A rule or a set of checkpoints that cannot be averaged; the message says what to change."""


def parse_rule(rule: str) -> tuple[str, int] | None:
    """``"last:3"`` -> ``("last", 3)``; ``""`` -> None (no averaging)."""
    if rule == "":
        return None
    match = AVERAGE_RULE.fullmatch(rule) if isinstance(rule, str) else None
    if match is None:
        raise AverageError(f"train.average={rule!r}; accepted: '' (off), last:N or best:N, e.g. last:3")
    return match.group(1), int(match.group(2))


def chosen_epochs(how: str, count: int, values: Sequence[float | None], higher_is_better: bool) -> list[int]:
    """The epochs (counted from 1) that ``how``/``count`` averages among a phase's epochs, whose monitored
    values are ``values`` (one per epoch; None where not scored): the last ``count``, or the ``count``
    best (ties: the later epoch). Fewer epochs than ``count``: all of them."""
    epochs = list(range(1, len(values) + 1))
    if how == "last":
        return epochs[-count:]
    scored = [(v, e) for v, e in zip(values, epochs, strict=True) if v is not None]
    if not scored:
        raise AverageError("best:N averaging needs the phase's monitored dev values; none were recorded")
    ranked = sorted(scored, key=lambda item: (-item[0] if higher_is_better else item[0], -item[1]))
    return sorted(e for _, e in ranked[:count])


def average_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of model state dicts with the same keys and shapes."""
    if not states:
        raise AverageError("no checkpoints to average")
    keys = list(states[0])
    for i, state in enumerate(states[1:], start=2):
        if list(state) != keys:
            raise AverageError(f"checkpoint {i} holds other weights than the first; average one run's phase")
    averaged = {}
    for key in keys:
        tensors = [state[key] for state in states]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise AverageError(f"{key}: the checkpoints' shapes differ; average one run's phase")
        if tensors[0].is_floating_point():
            total = torch.zeros(tensors[0].shape, dtype=torch.float64)
            for tensor in tensors:
                total += tensor.detach().to("cpu", torch.float64)
            averaged[key] = (total / len(tensors)).to(tensors[0].dtype)
        else:
            averaged[key] = tensors[-1].detach().clone()
    return averaged


def apply_state_masks(
    state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``state`` with every masked weight exactly zero where its mask is False (a sparse phase's)."""
    out = dict(state)
    for name, mask in masks.items():
        if name not in out:
            raise AverageError(f"the masks name {name}, which the averaged weights lack")
        weight = out[name]
        out[name] = torch.where(
            mask.to(weight.device, torch.bool), weight, torch.zeros((), dtype=weight.dtype)
        )
    return out
