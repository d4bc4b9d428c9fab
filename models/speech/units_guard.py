"""The output units a speech model was trained with, kept in its checkpoint and checked on load.

Why: a model trained on one unit inventory (characters, or a SentencePiece model) and resumed or evaluated
with another of the same size would load without a shape error and then spell garbage. The units travel
as a byte buffer in the model's state dict; loading a state dict with other units raises
:class:`UnitsMismatchError` naming the first pieces that differ. Checkpoints written before the buffer
existed load as before.
"""

from __future__ import annotations

import torch
from torch import nn

BUFFER = "output_units"


class UnitsMismatchError(ValueError):
    """A checkpoint's output units differ from the data's."""


def _as_bytes(symbols: list[str]) -> torch.Tensor:
    return torch.tensor(list("\n".join(symbols).encode("utf-8")), dtype=torch.uint8)


def _as_symbols(buffer: torch.Tensor) -> list[str]:
    return bytes(buffer.tolist()).decode("utf-8").split("\n")


def attach_units(model: nn.Module, symbols: list[str]) -> None:
    """Register ``symbols`` (index -> unit) on ``model`` and refuse state dicts with other units."""
    model.register_buffer(BUFFER, _as_bytes(symbols))

    def check(module, state_dict, prefix, *args) -> None:
        key = prefix + BUFFER
        if key not in state_dict:  # a checkpoint from before units were recorded
            state_dict[key] = getattr(module, BUFFER).clone()
            return
        if torch.equal(state_dict[key], getattr(module, BUFFER)):
            return
        theirs, mine = _as_symbols(state_dict[key]), _as_symbols(getattr(module, BUFFER))
        diff = next((i for i, (a, b) in enumerate(zip(theirs, mine, strict=False)) if a != b), len(mine))
        raise UnitsMismatchError(
            f"output units mismatch: the checkpoint has {len(theirs)} units, the data {len(mine)}; first "
            f"difference at index {diff}: checkpoint {theirs[diff : diff + 3]} vs data {mine[diff : diff + 3]}. "
            "Use the units (task_args.units) the checkpoint was trained with"
        )

    model.register_load_state_dict_pre_hook(check)
