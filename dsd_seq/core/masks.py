"""Masks and their enforcement (DSD's sparse step, Sec. 2 of the paper).

Each prunable tensor keeps exactly ``k = N - round(s * N)`` weights of highest score (the same rounding
as ``torch.nn.utils.prune``); the score is the pruning criterion's (``criteria.py``; by default |w|, the
paper's). Ties at the threshold keep the lowest flat indices, so masks are deterministic. Enforcement multiplies weights (and gradients) by the mask in place, all tensors in one
foreach call: no forward hooks and no re-parametrisation, so cuDNN's flattened RNN weights keep their
storage.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from dsd_seq.core.criteria import CRITERIA, Criterion
from dsd_seq.core.masking_config import MaskingConfig, MaskingError

#: Optimizer state keys that hold squared-gradient averages divided under a square root: Adam and its
#: relatives (AdamW, NAdam, RAdam, amsgrad) and RMSprop.
SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq", "square_avg")


def kept_count(numel: int, sparsity: float) -> int:
    """Number of weights kept at ``sparsity``: N - round(s*N), as torch.nn.utils.prune rounds."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return numel - round(sparsity * numel)


def top_k_mask(scores: torch.Tensor, k: int, nonnegative: bool = False) -> torch.Tensor:
    """Boolean mask of the ``k`` largest entries of ``scores`` (any shape); ties keep lower indices.
    ``nonnegative`` (scores with the sign bit clear, e.g. ``abs()`` magnitudes; not -0.0) saves the pass
    that looks for negative values.

    The k-th largest value is found by a radix select on the float bits (two 16-bit histograms), all
    linear passes: about 3x faster than ``torch.kthvalue`` on a CPU, so a 67M-parameter DeepSpeech 2
    gets its masks in about half a second (benchmarks/thresholds.py). float64 scores use kthvalue.
    """
    flat = scores.reshape(-1)
    n = flat.numel()
    if k >= n:
        return torch.ones_like(scores, dtype=torch.bool)
    if k <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    if flat.dtype == torch.float64:
        return _top_k_mask_kthvalue(flat, k).view_as(scores)
    values = flat.float().contiguous()
    # the sign bit, not ``values < 0``: -0.0 (a pruned negative weight) and -NaN have it set
    signed = not nonnegative and bool((values.view(torch.int32) < 0).any())
    keys = _order_preserving_keys(values) if signed else values.view(torch.int32)
    threshold, ties, equal = _kth_largest_key(keys, k, offset=32768 if signed else 0)
    if ties == equal:  # every entry equal to the threshold is kept (always so for distinct values)
        return (keys >= threshold).view_as(scores)
    keep = keys > threshold
    keep[torch.nonzero(keys == threshold).squeeze(1)[:ties]] = True
    return keep.view_as(scores)


def _order_preserving_keys(values: torch.Tensor) -> torch.Tensor:
    """int32 keys ordered like the float32 ``values`` (the bits of non-negative floats already are:
    they are used as they are); negative values get their magnitude bits flipped."""
    bits = (values + 0.0).view(torch.int32)  # + 0.0 turns -0.0 into 0.0, which compare equal
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def _kth_largest_key(keys: torch.Tensor, k: int, offset: int) -> tuple[int, int, int]:
    """The k-th largest key, how many entries equal to it belong to the top k and how many equal it in
    all: the high 16 bits by
    one histogram over all keys, the low 16 bits by one over the keys in that high bucket."""
    high = keys >> 16
    if offset:  # negative keys: shift the high halves into bincount's range [0, 65536)
        high = high + offset
    counts = torch.bincount(high, minlength=65536)
    at_or_above = counts.flip(0).cumsum(0).flip(0)
    bucket = int((at_or_above >= k).nonzero()[-1])
    need = k - int(at_or_above[bucket] - counts[bucket])
    low_counts = torch.bincount(keys[high == bucket] & 0xFFFF, minlength=65536)
    low_at_or_above = low_counts.flip(0).cumsum(0).flip(0)
    low = int((low_at_or_above >= need).nonzero()[-1])
    ties = need - int(low_at_or_above[low] - low_counts[low])
    return ((bucket - offset) << 16) | low, ties, int(low_counts[low])


def _top_k_mask_kthvalue(flat: torch.Tensor, k: int) -> torch.Tensor:
    n = flat.numel()
    threshold = torch.kthvalue(flat, n - k + 1).values
    keep = flat > threshold
    missing = k - int(keep.sum())
    if missing > 0:
        keep[torch.nonzero(flat == threshold).squeeze(1)[:missing]] = True
    return keep


@contextlib.contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """Run the threshold passes on one CPU thread: they are light and memory-bound, and on a shared
    CPU two OpenMP threads made a 67M-parameter model's masks 5x slower (1.9 s against 0.37 s)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _scores(masking: MaskingConfig, criterion: Criterion, name: str, p: nn.Parameter) -> torch.Tensor:
    scores = criterion.score(name, p)
    if not isinstance(scores, torch.Tensor) or scores.shape != p.shape:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise MaskingError(
            f"masking.criterion={masking.criterion!r} scored {name!r} with {got}; a criterion must return "
            f"one score per weight, a tensor of shape {tuple(p.shape)}"
        )
    return scores


@dataclass(frozen=True)
class LayerSparsity:
    """One row of the sparsity report."""

    name: str
    numel: int
    kept: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.kept / self.numel if self.numel else 0.0


class MaskSet:
    """Boolean masks for a set of named parameters, with in-place enforcement."""

    def __init__(self, params: Mapping[str, nn.Parameter], masks: Mapping[str, torch.Tensor]):
        missing = set(params) ^ set(masks)
        if missing:
            raise ValueError(f"masks and parameters disagree on names: {sorted(missing)}")
        for name, p in params.items():
            if masks[name].shape != p.shape:
                raise ValueError(
                    f"mask for {name!r} has shape {tuple(masks[name].shape)}, parameter {tuple(p.shape)}"
                )
        self.params = dict(params)
        self.masks = {n: masks[n].to(device=p.device, dtype=torch.bool) for n, p in self.params.items()}
        self._multipliers: list[torch.Tensor] | None = None
        self._pruned_on_cpu: dict[str, torch.Tensor] = {}  # ~mask, for park_second_moments_
        self._parked: set[int] = set()  # ids of the moment tensors parked so far

    # construction -------------------------------------------------------------------------------
    @classmethod
    def from_criterion(
        cls, params: Mapping[str, nn.Parameter], sparsity: float, masking: MaskingConfig | None = None
    ) -> MaskSet:
        """Keep the weights that ``masking.criterion`` scores highest (default |w|) per layer
        (``scope="layer"``, the paper) or across all layers (``scope="global"``). ``overrides`` maps name
        globs to a per-layer sparsity; in global scope the overridden layers are pruned on their own and
        the rest share one threshold."""
        masking = masking or MaskingConfig()
        masking.validate(params)
        criterion = CRITERIA[masking.criterion]
        masks: dict[str, torch.Tensor] = {}
        pooled: list[str] = []
        with torch.no_grad(), _one_cpu_thread():
            for name, p in params.items():
                if masking.scope == "global" and not masking.is_overridden(name):
                    pooled.append(name)
                    continue
                k = kept_count(p.numel(), masking.layer_sparsity(name, sparsity))
                masks[name] = top_k_mask(
                    _scores(masking, criterion, name, p), k, nonnegative=criterion.nonnegative
                )
            if pooled:
                scores = torch.cat(
                    [_scores(masking, criterion, n, params[n]).reshape(-1).float() for n in pooled]
                )
                keep = top_k_mask(
                    scores, kept_count(scores.numel(), sparsity), nonnegative=criterion.nonnegative
                )
                offset = 0
                for name in pooled:
                    p = params[name]
                    masks[name] = keep[offset : offset + p.numel()].view_as(p).to(p.device)
                    offset += p.numel()
        return cls(params, masks)

    # enforcement ----------------------------------------------------------------------------------
    def _multiplier_list(self) -> list[torch.Tensor]:
        ps = list(self.params.values())
        mults = self._multipliers
        if mults is None or any(
            m.dtype != p.dtype or m.device != p.device for m, p in zip(mults, ps, strict=True)
        ):
            mults = [self.masks[n].to(p.dtype) for n, p in self.params.items()]
            self._multipliers = mults
        return mults

    @torch.no_grad()
    def apply_(self) -> None:
        """Zero every pruned weight, in place (W <- W * mask), all tensors in one foreach call."""
        torch._foreach_mul_(list(self.params.values()), self._multiplier_list())

    @torch.no_grad()
    def mask_grads_(self) -> None:
        """Zero the gradients of pruned weights so optimizer state (momentum, Adam moments) never
        accumulates there."""
        pairs = [
            (p.grad, m)
            for p, m in zip(self.params.values(), self._multiplier_list(), strict=True)
            if p.grad is not None
        ]
        if pairs:
            grads, mults = zip(*pairs, strict=True)
            torch._foreach_mul_(list(grads), list(mults))

    @torch.no_grad()
    def park_second_moments_(self, optimizer: torch.optim.Optimizer, again: bool = True) -> None:
        """Set the second moments (``SECOND_MOMENTS``) to 1.0 at pruned positions of CPU tensors, where
        they would otherwise be exactly 0.

        Why: torch's CPU ``sqrt`` is several times slower on exact zeros than on positive numbers, which
        made a masked NeuralTalk step ~5% slower than dense. Nothing computed changes: at a pruned
        position the gradient is always masked and the first moment was zeroed at pruning, so the update
        there is 0 for any positive second moment; ``mask_optimizer_state_`` zeroes the parked values
        when the masks are lifted or replaced. Kept positions are not touched. CUDA tensors are left
        alone (no such slow path measured there). With ``again=False`` only moment tensors not parked
        before are (``masked_fill_`` costs about as much as the slow ``sqrt``, so not every step).
        """
        for name, p in self.params.items():
            if p.device.type != "cpu":
                continue
            state = optimizer.state.get(p, {})
            moments = [state[k] for k in SECOND_MOMENTS if torch.is_tensor(state.get(k))]
            if moments:
                if name not in self._pruned_on_cpu:
                    self._pruned_on_cpu[name] = ~self.masks[name].cpu()
                pruned = self._pruned_on_cpu[name]
                for moment in moments:
                    if moment.shape == p.shape and (again or id(moment) not in self._parked):
                        moment.masked_fill_(pruned, 1.0)
                        self._parked.add(id(moment))

    @torch.no_grad()
    def mask_optimizer_state_(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero optimizer state (momentum buffers, Adam moments) at pruned positions."""
        for p, mult in zip(self.params.values(), self._multiplier_list(), strict=True):
            for value in optimizer.state.get(p, {}).values():
                if torch.is_tensor(value) and value.shape == p.shape:
                    value.mul_(mult.to(value.dtype))

    # reporting and state ---------------------------------------------------------------------------
    def mask_report(self) -> list[LayerSparsity]:
        """Per-layer sparsity of the masks."""
        return [LayerSparsity(n, m.numel(), int(m.sum())) for n, m in self.masks.items()]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: m.detach().cpu().clone() for n, m in self.masks.items()}


def measured_sparsity(params: Mapping[str, nn.Parameter]) -> tuple[list[LayerSparsity], float]:
    """Per-layer and total fraction of exact zeros among ``params``."""
    rows = [LayerSparsity(n, p.numel(), int(torch.count_nonzero(p.detach()))) for n, p in params.items()]
    total = sum(r.numel for r in rows)
    kept = sum(r.kept for r in rows)
    return rows, (1.0 - kept / total) if total else 0.0
