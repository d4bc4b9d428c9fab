"""Several training processes on one machine, started as torchrun would start them (the gloo backend on
the CPU, or NCCL on GPUs), for tests/test_distributed.py and tests/test_distributed_feature_store.py.

A test's worker is ``worker(rank, world, port, tmp, *args)``: it calls :func:`become_rank` first, and
saves what it wants checked with :func:`save_rank_result`; :func:`spawn_ranks` runs them all and returns
those results, rank 0 first.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def become_rank(rank: int, world: int, port: int) -> None:
    """The environment torchrun gives rank ``rank`` of ``world`` processes on this machine."""
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )


def save_rank_result(result: dict, tmp: Path, rank: int) -> None:
    torch.save(result, tmp / f"rank{rank}.pt")


def spawn_ranks(worker: Callable, tmp: Path, *args, world: int = 2) -> list[dict]:
    """Run ``worker`` as ``world`` processes and return what each saved."""
    mp.spawn(worker, args=(world, free_port(), tmp, *args), nprocs=world, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=True, map_location="cpu") for r in range(world)]
