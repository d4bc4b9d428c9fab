"""Data-parallel training under ``torchrun``: the process group, rank helpers and rank agreement checks.

One process per device; ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``. Without them every helper answers for a single process (rank 0 of 1) and does nothing,
so the single-process path has no collective call at all.

DSD needs every rank to hold the same masks, or the ranks' weights drift apart for good. Masks are
computed on every rank from the (identical) weights and then *verified* with :func:`check_identical`,
rather than computed on rank 0 and broadcast: verification costs a few integers per tensor instead of a
broadcast of every mask, and it also catches weights that have already diverged, which a broadcast would
hide.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

#: Evaluation and checkpoint writing run on rank 0 while the others wait at a barrier: allow them long.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=60)


class RankMismatchError(RuntimeError):
    """Tensors that must be identical on every rank (masks, weights) are not."""


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def resolve_device(name: str) -> torch.device:
    """The device ``train.device`` names (auto: a GPU if one is visible); under torchrun
    :func:`init_from_env` then picks this rank's GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but no CUDA device is visible; use train.device=cpu or auto")
    return torch.device(name)


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU); returns this rank's device
    (``cuda:LOCAL_RANK`` on GPUs). A no-op outside torchrun or when the group exists already."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return device
    if device.type == "cuda":
        local_rank, gpus = int(os.environ.get("LOCAL_RANK", 0)), torch.cuda.device_count()
        if local_rank >= gpus:
            raise ValueError(
                f"process {local_rank} on this node needs GPU {local_rank}, but {gpus} GPU(s) are visible: "
                f"start at most {gpus} processes per node (--nproc-per-node / --ngpu), or train on CPUs "
                "with gloo (--set train.device=cpu)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT, **kwargs)
    return device


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 writes checkpoints, metrics and progress bars and runs the evaluation."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _collective_device() -> torch.device:
    """NCCL moves tensors on the rank's GPU; gloo on the CPU."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks, as a new CPU float64 tensor (one small collective per call)."""
    buffer = values.detach().to(_collective_device(), torch.float64).clone()
    if is_distributed():
        dist.all_reduce(buffer)
    return buffer.cpu()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (e.g. evaluation metrics computed on rank 0)."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src, device=_collective_device())
    return holder[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (e.g. each rank's RNG state for a checkpoint)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def checksum(tensor: torch.Tensor) -> torch.Tensor:
    """An exact, position-sensitive integer fingerprint of a tensor's bits: equal tensors give equal
    checksums on any rank, and a single flipped weight or mask entry changes it."""
    flat = tensor.detach().reshape(-1)
    if flat.dtype == torch.bool:
        bits = flat.to(torch.int64)
    else:
        width = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[flat.element_size()]
        bits = flat.contiguous().view(width).to(torch.int64)
    weights = torch.arange(bits.numel(), device=bits.device, dtype=torch.int64) % 1_000_003 + 1
    return torch.stack([bits.sum(), (bits * weights).sum(), (bits ^ weights).sum()])


def check_identical(tensors: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise :class:`RankMismatchError` naming the first tensor that differs between ranks.

    One all_gather of three integers per tensor; a no-op in a single process."""
    if not is_distributed() or not tensors:
        return
    names = list(tensors)
    local = torch.stack([checksum(tensors[n]) for n in names]).to(_collective_device())
    gathered = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(gathered, local)
    for r, other in enumerate(gathered):
        differs = (other != gathered[0]).any(dim=1).nonzero()
        if len(differs):
            name = names[int(differs[0])]
            raise RankMismatchError(
                f"{what}: {name!r} differs between rank 0 and rank {r}; the ranks have diverged (different "
                "weights, data or library versions on some node). Resume every rank from the same checkpoint, "
                "with the same dsd-seq and torch versions on every node"
            )


def wrap_for_training(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module a training step runs: under torchrun ``model`` in DistributedDataParallel (which copies
    rank 0's weights to every rank now and averages the gradients in each backward pass), else ``model``."""
    if not is_distributed():
        return model
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def check_same_start(
    checkpoint: Path | None, global_step: int, model: torch.nn.Module, masks: Mapping | None
) -> None:
    """Every rank starts from the same checkpoint (None: from scratch), weights and masks, or none runs."""
    if not is_distributed():
        return
    starts = gather_objects((str(checkpoint), global_step))
    if any(start != starts[0] for start in starts):
        raise RankMismatchError(
            f"the ranks start from different checkpoints (rank: (file, step) = {dict(enumerate(starts))}); "
            "the experiment folder must be one folder on a file system every node shares"
        )
    check_identical(dict(model.named_parameters()), "weights at the start")
    if masks is not None:
        check_identical(masks, "masks at the start")


def rank_seed(seed: int, rank_: int) -> int:
    """Rank 0 keeps the run's seed (single-process runs are unchanged); other ranks get seeds far from it,
    so rank 1 of seed s never replays rank 0 of seed s + 1 (compare's seeds are 0..N-1)."""
    return seed + 1_000_003 * rank_


def shard(items: list[Any], rank_: int, world: int) -> list[Any]:
    """Items ``rank, rank + world, ...`` of a list every rank built identically (the epoch's batches).

    The remainder (``len % world`` items) is dropped on every rank alike, so each rank takes the same
    number of steps: DDP's gradient all-reduce needs every rank in every step. Neighbouring length
    buckets go to different ranks, so the ranks' batches have similar lengths and none waits long."""
    if world == 1:
        return items
    usable = len(items) - len(items) % world
    if usable == 0:
        raise ValueError(
            f"an epoch has {len(items)} batches, fewer than the {world} processes; use fewer processes, "
            "a smaller batch size or more training data"
        )
    return items[rank_:usable:world]


def destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
