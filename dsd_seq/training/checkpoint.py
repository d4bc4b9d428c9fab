"""What a training checkpoint holds beyond the model: the random generators' states, in a form that
``torch.load(weights_only=True)`` reads back (:mod:`dsd_seq.safe_io` writes and checks the file), and
whether a checkpoint may continue in this run (same format, process count, schedule and configuration).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import CheckpointError
from dsd_seq.training.config import accepted_changes, diff
from dsd_seq.training.distributed import rank_seed

#: The layout of the state a checkpoint holds (see ``Trainer.state_dict``).
CHECKPOINT_FORMAT = 1
#: What a run continuing from a checkpoint (``--resume``, ``--init-from``) needs besides the weights.
RESUME_KEYS = ("format", "optimizer", "dsd", "position", "schedule", "results")


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


def restore_rng(state: dict[str, Any], rank: int, world_size: int, seed: int) -> None:
    """Continue this rank's random streams from a checkpoint. Under torchrun each rank continues its own
    when the checkpoint has one per rank; after a checkpoint of another process count (a phase end)
    every rank starts a fresh stream of its own (rank 0's from the run's seed). A run of another seed
    continuing a phase end (the shared-baseline design's seeds) starts fresh streams from its own seed,
    so that seeds differ in their retraining."""
    if saved_seed(state) != seed:
        torch.manual_seed(rank_seed(seed, rank))
        random.seed(rank_seed(seed, rank))
        np.random.seed(rank_seed(seed, rank) % 2**32)
        return
    rngs = state.get("rng_ranks")
    if rngs is not None and len(rngs) == world_size:
        set_rng_state(rngs[rank])
        return
    set_rng_state(state["rng"])
    if world_size > 1:
        torch.manual_seed(rank_seed(seed, rank))


def saved_seed(state: dict[str, Any]) -> int:
    """The ``train.seed`` the checkpoint's run had (0, the default, when not recorded)."""
    return int(state.get("config", {}).get("train", {}).get("seed", 0))


def check_resumable(
    path: Path,
    state: dict[str, Any],
    schedule: Schedule,
    config: dict,
    world_size: int,
    continue_schedule: bool,
    also_resumable: tuple[str, ...] = (),
) -> list[str]:
    """Raise a CheckpointError saying why ``state`` (read from ``path``) cannot continue a run of
    ``schedule`` with ``config`` (as a dict) on ``world_size`` processes. With ``continue_schedule`` the
    checkpoint may come from another schedule that shares this one's completed phases (e.g. the LLR
    baseline starting from DSD's dense phase), and from another process count. ``also_resumable``: the
    task's settings that do not change the computation (evaluation batch size, decoding). Returns the
    accepted changes ('key: old -> new'), for the user."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}"
        )
    position = state["position"]
    saved_world = int(state.get("world_size", 1))
    if saved_world != world_size and not continue_schedule:
        raise CheckpointError(
            f"{path} was written by a run of {saved_world} process(es), this one has {world_size}: "
            f"each process's share of an epoch depends on their number. Resume with {saved_world} "
            "(torchrun --nnodes x --nproc-per-node), or start a new experiment folder with --init-from "
            "a phaseN-end.pt"
        )
    if continue_schedule:
        done = position["phase"]
        mine, theirs = schedule.to_list()[:done], state["schedule"][:done]
        matches = mine in (theirs, _as_trained(theirs, state.get("results", [])))
        if not matches or position["epoch"] or position["step"]:
            raise CheckpointError(
                f"{path}: its completed phases {theirs} (position {position}) are not a prefix of this "
                f"schedule {schedule.compact()}; start from a phase-end checkpoint of a matching run"
            )
    elif state["schedule"] != schedule.to_list():
        raise CheckpointError(
            f"{path} was written by schedule {state['schedule']}, not {schedule.to_list()}; "
            "resume with the same schedule or use a new experiment folder"
        )
    changed = diff(state.get("config", {}), config, also_resumable)
    if continue_schedule:  # a phase end may start runs of other seeds (compare --design shared-baseline)
        changed = [c for c in changed if not c.startswith("train.seed:")]
    if changed:
        raise CheckpointError(
            f"{path} was written with a different configuration: {'; '.join(changed)}. Resume with the "
            "original settings (see config.yaml in the experiment folder) or use a new experiment folder"
        )
    return accepted_changes(state.get("config", {}), config, also_resumable)


def _as_trained(phases: list[dict], results: list[dict]) -> list[dict]:
    """Completed phases as they ran: a phase that ended at convergence becomes a fixed phase of its
    realized epochs, so an equal-epoch baseline (``Schedule.realized``) may start from its end."""
    trained = []
    for phase, row in zip(phases, results, strict=False):
        if "until" in phase:
            phase = {k: v for k, v in phase.items() if k != "until"} | {"epochs": row["epochs"]}
        trained.append(phase)
    return trained
