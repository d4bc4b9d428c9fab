"""The sparse model stored as its nonzeros: a bitmask of where they are plus their values.

Why: a pruned checkpoint keeps every zero, so a model pruned to 50% is as large on disk as the dense one
(the complaint of Distiller #183/#416 and torch.nn.utils.prune #36214). The DSD paper's sparse phase
is a model in its own right (the "sparse" rows of its Tables 1-6), so export can store it compactly.

A bitmask (1 bit per weight) beats CSR indices (32 or 64 bits per nonzero) at the sparsities DSD uses
(30-80%): at 50% a bitmask adds 1/64 of the fp32 dense size, int32 CSR 1/2. Values keep their dtype, so
expanding gives back the exact weights (bit-identical); ``fp16=True`` halves them again, no longer exactly.
"""

from __future__ import annotations

import numpy as np
import torch

#: a tensor is stored sparse only if at least this fraction is zero (below it the bitmask does not pay)
MIN_SPARSITY = 0.05


def compress_state(state: dict[str, torch.Tensor], fp16: bool = False) -> dict[str, object]:
    """``state`` with every floating tensor of >= MIN_SPARSITY zeros replaced by {bitmask, values}."""
    out: dict[str, object] = {}
    for name, tensor in state.items():
        if not torch.is_floating_point(tensor) or tensor.numel() == 0:
            out[name] = tensor
            continue
        nonzero = tensor != 0
        if 1.0 - float(nonzero.float().mean()) < MIN_SPARSITY:
            out[name] = tensor.half() if fp16 else tensor
            continue
        flat = tensor.detach().reshape(-1).cpu()
        mask = nonzero.reshape(-1).cpu()
        values = flat[mask]
        out[name] = {
            "sparse": "bitmask",
            "shape": list(tensor.shape),
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "bitmask": torch.from_numpy(np.packbits(mask.numpy())),
            "values": values.half() if fp16 else values.clone(),
        }
    return out


#: the dtypes a stored sparse tensor may name (``getattr(torch, name)`` of anything else is refused)
SPARSE_DTYPES = ("float16", "bfloat16", "float32", "float64")


class SparseStorageError(ValueError):
    """A stored sparse tensor whose claims do not match its own data; the message names the tensor."""


def _checked_numel(name: str, item: object) -> int:
    """The element count ``item`` claims, checked against its bitmask and values before anything is
    allocated from it: a claimed shape can never ask for more than its stored bits cover."""
    if not isinstance(item, dict) or item.get("sparse") != "bitmask":
        raise SparseStorageError(f"{name}: neither a tensor nor a bitmask-sparse entry")
    shape, dtype, bitmask, values = (item.get(k) for k in ("shape", "dtype", "bitmask", "values"))
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise SparseStorageError(f"{name}: shape {shape!r} is not a list of non-negative whole numbers")
    if dtype not in SPARSE_DTYPES:
        raise SparseStorageError(f"{name}: dtype {dtype!r}; accepted: {', '.join(SPARSE_DTYPES)}")
    if not isinstance(bitmask, torch.Tensor) or bitmask.dtype != torch.uint8 or bitmask.dim() != 1:
        raise SparseStorageError(f"{name}: the bitmask is not a 1-D uint8 tensor")
    if not isinstance(values, torch.Tensor) or not values.is_floating_point() or values.dim() != 1:
        raise SparseStorageError(f"{name}: the values are not a 1-D floating tensor")
    numel = 1
    for d in shape:
        numel *= d
    if (numel + 7) // 8 != bitmask.numel():
        raise SparseStorageError(
            f"{name}: shape {shape} claims {numel} weights, but the bitmask covers {8 * bitmask.numel()}"
        )
    kept = int(np.unpackbits(bitmask.numpy(), count=numel).sum())
    if kept != values.numel():
        raise SparseStorageError(
            f"{name}: the bitmask marks {kept} nonzeros, but {values.numel()} values are stored"
        )
    return numel


def expand_state(stored: dict[str, object]) -> dict[str, torch.Tensor]:
    """The dense state dict back (in each tensor's original dtype); a SparseStorageError for an entry
    whose shape, dtype, bitmask and values disagree."""
    state: dict[str, torch.Tensor] = {}
    for name, item in stored.items():
        if isinstance(item, torch.Tensor):
            state[name] = item
            continue
        numel = _checked_numel(name, item)
        shape, dtype = item["shape"], getattr(torch, item["dtype"])
        mask = torch.from_numpy(np.unpackbits(item["bitmask"].numpy(), count=numel).astype(bool))
        flat = torch.zeros(numel, dtype=dtype)
        flat[mask] = item["values"].to(dtype)
        state[name] = flat.reshape(shape)
    return state


def is_compressed(stored: dict[str, object]) -> bool:
    return any(isinstance(v, dict) and v.get("sparse") for v in stored.values())
