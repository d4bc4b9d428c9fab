"""What a training checkpoint holds beyond the model: the random generators' states, in a form that
``torch.load(weights_only=True)`` reads back (:mod:`dsd_seq.safe_io` writes and checks the file)."""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict:
    """All random generators a training step may touch, as weights_only-loadable values."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # this process's device only: under torchrun each rank owns one GPU, and reading every device's
        # state would open a CUDA context on all of them from every rank
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    if "cuda" in state and torch.cuda.is_available():
        if isinstance(state["cuda"], list):  # checkpoints before torchrun support: every device's state
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            torch.cuda.set_rng_state(state["cuda"])
