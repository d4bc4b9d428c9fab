"""Which parameters DSD prunes.

The paper (Sec. 2, Sec. 4) prunes the fully-connected and recurrent matrices only: input-to-hidden and
hidden-to-hidden, every layer, both directions. Embeddings, the first convolution, biases and
normalisation parameters are never pruned. Custom recurrent modules opt in by declaring
``dsd_prunable = ("weight_hh_forward", ...)``, naming their own direct parameters.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from torch import nn

_RNN_WEIGHT = re.compile(r"^weight_(ih|hh|hr)_l\d+(_reverse)?$")

#: Module types whose matrices are prunable by default (the paper's FC and recurrent layers).
DEFAULT_TYPES: tuple[str, ...] = ("Linear", "RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell")
#: Module types that may be added with ``types``; the first convolution is still never pruned.
OPTIONAL_TYPES: tuple[str, ...] = ("Conv1d", "Conv2d")
#: Type names -> classes; subclasses count (e.g. the out_proj Linear of nn.MultiheadAttention).
_CLASSES: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear,
    "RNN": nn.RNN,
    "GRU": nn.GRU,
    "LSTM": nn.LSTM,
    "RNNCell": nn.RNNCell,  # the cells of a hand-written loop: weight_ih, weight_hh
    "GRUCell": nn.GRUCell,
    "LSTMCell": nn.LSTMCell,
    "Conv1d": nn.Conv1d,
    "Conv2d": nn.Conv2d,
}
#: Never pruned, whatever the configuration says.
_NEVER: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)


class SelectionError(ValueError):
    """A selection rule that cannot be satisfied (e.g. a name pattern that matches nothing)."""


@dataclass
class SelectionConfig:
    """Rules for choosing prunable parameters; patterns are shell globs on parameter names. Also the
    ``selection`` section of a run config, so its fields are lists (any sequence works here)."""

    types: list[str] = field(default_factory=lambda: list(DEFAULT_TYPES))
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)


def _module_candidates(name: str, module: nn.Module, types: tuple[type[nn.Module], ...]) -> Iterable[str]:
    own = dict(module.named_parameters(recurse=False))
    for pname in getattr(type(module), "dsd_prunable", ()):
        if pname not in own:
            raise SelectionError(
                f"{type(module).__name__}.dsd_prunable names {pname!r}, which is not a parameter of module "
                f"{name or '<root>'} (its parameters: {sorted(own)})"
            )
        yield pname
    if not isinstance(module, types):
        return
    if isinstance(module, nn.RNNBase):
        yield from (p for p in own if _RNN_WEIGHT.match(p))
    elif isinstance(module, nn.RNNCellBase):
        yield from (p for p in ("weight_ih", "weight_hh") if p in own)
    elif "weight" in own:
        yield "weight"
    elif "weight" in getattr(module, "parametrizations", {}) or "weight_v" in own:
        warnings.warn(
            f"selection: {name}.weight is parametrized (e.g. weight_norm) and is not pruned; to prune "
            "it, include the tensor that holds its zeros (weight_norm: parametrizations.weight.original1)",
            stacklevel=4,
        )


def _first_conv_name(model: nn.Module) -> str | None:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            return f"{name}.weight" if name else "weight"
    return None


def _never_prunable_names(model: nn.Module) -> set[str]:
    """The first convolution's weight and every embedding parameter."""
    names = {n for n in [_first_conv_name(model)] if n}
    for mname, module in model.named_modules():
        if isinstance(module, _NEVER):
            names |= {f"{mname}.{p}" if mname else p for p, _ in module.named_parameters(recurse=False)}
    return names


def candidate_names(model: nn.Module, types: Sequence[str] = DEFAULT_TYPES) -> list[str]:
    """Parameter names eligible by module type, before include/exclude patterns."""
    unknown = set(types) - set(_CLASSES)
    if unknown:
        raise SelectionError(
            f"selection.types: unknown module type(s) {sorted(unknown)}; accepted: {list(_CLASSES)}"
        )
    classes = tuple(_CLASSES[t] for t in types)
    never = _never_prunable_names(model)
    names: list[str] = []
    for mname, module in model.named_modules():
        if isinstance(module, _NEVER):
            continue
        for pname in _module_candidates(mname, module, classes):
            full = f"{mname}.{pname}" if mname else pname
            if full not in never:
                names.append(full)
    return names


def _check_patterns(patterns: Sequence[str], pool: Sequence[str], key: str) -> None:
    for pattern in patterns:
        if not fnmatch.filter(pool, pattern):
            listing = "\n  ".join(pool) if pool else "(none)"
            raise SelectionError(
                f"selection.{key}: pattern {pattern!r} matches no parameter. Candidates:\n  {listing}"
            )


def select_prunable(model: nn.Module, config: SelectionConfig | None = None) -> dict[str, nn.Parameter]:
    """Return the prunable parameters of ``model`` by name, in module order.

    ``include`` adds parameters by name (only matrices: biases and norms are refused), ``exclude``
    removes them; either pattern matching nothing raises a :class:`SelectionError` that lists the
    names it could have matched.
    """
    config = config or SelectionConfig()
    params = dict(model.named_parameters())
    chosen = candidate_names(model, config.types)
    if config.include:
        matrices = [n for n, p in params.items() if p.dim() >= 2]
        _check_patterns(config.include, matrices, "include")
        never = _never_prunable_names(model)
        for name in matrices:
            if name in chosen or not any(fnmatch.fnmatch(name, p) for p in config.include):
                continue
            if name in never:
                raise SelectionError(
                    f"selection.include: {name!r} belongs to an embedding or the first convolution, "
                    "which DSD never prunes; remove it from the include list"
                )
            chosen.append(name)
    if config.exclude:
        _check_patterns(config.exclude, chosen, "exclude")
        chosen = [n for n in chosen if not any(fnmatch.fnmatch(n, p) for p in config.exclude)]
    # shared tensors (weight tying) are listed once, and never when an embedding or the first conv owns one
    params = dict(model.named_parameters(remove_duplicate=False))
    protected = {id(params[n]) for n in _never_prunable_names(model) if n in params}
    order = {n: i for i, n in enumerate(params)}
    selected: dict[str, nn.Parameter] = {}
    for name in sorted(set(chosen), key=order.__getitem__):
        if id(params[name]) in protected or any(params[name] is p for p in selected.values()):
            warnings.warn(
                f"selection: {name!r} shares its tensor with an embedding, the first convolution "
                "or another selected layer (weight tying); DSD does not prune it again",
                stacklevel=2,
            )
            continue
        selected[name] = params[name]
    return selected
