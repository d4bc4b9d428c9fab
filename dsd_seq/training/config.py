"""Typed run configuration, loaded from YAML; unknown keys and wrong types are errors.

``--set section.key=value`` on the command line overrides any field (the value is parsed as YAML);
``--set-str section.key=text`` sets a string verbatim, so a path with spaces, quotes or colons needs no
quoting beyond the shell's.
The configuration that ran is saved beside the run as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dsd_seq.core.masking_config import MaskingConfig, MaskingError
from dsd_seq.core.selection import SelectionConfig


class ConfigError(ValueError):
    """An invalid configuration; the message names the key, the file and the accepted values."""


@dataclass
class TrainConfig:
    optimizer: str = "adam"  # sgd | nesterov | adam | adamw
    momentum: float = 0.9
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0 disables clipping
    seed: int = 0
    checkpoint_every_steps: int = 0  # extra mid-epoch checkpoints; 0 = at epoch ends only
    keep_checkpoints: int = 3  # recent step checkpoints kept (phase-end ones are always kept)
    max_nonfinite_steps: int = 20  # consecutive NaN/inf losses before the run stops
    num_threads: int = 0  # torch intra-op threads; 0 = torch's default
    device: str = "auto"  # auto | cpu | cuda (under torchrun: cuda:LOCAL_RANK)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast forward; fp16 with a gradient scaler)
    eval_splits: list[str] = field(default_factory=lambda: ["dev", "test"])
    tensorboard: bool = True
    progress: bool = True


@dataclass
class RunConfig:
    task: str = ""  # "module:factory" building the task, e.g. "models.speech_task:build_task"
    task_args: dict[str, Any] = field(default_factory=dict)
    schedule: Any = ""  # compact string or list of phases (see dsd_seq.core.schedule)
    selection: SelectionConfig = field(default_factory=SelectionConfig)  # which weights are prunable
    masking: MaskingConfig = field(default_factory=MaskingConfig)  # criterion, scope, per-layer overrides
    train: TrainConfig = field(default_factory=TrainConfig)


_OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw")
_PRECISIONS = ("fp32", "bf16", "fp16")


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys and values of the wrong type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'top level'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where or 'top level'}: unknown key(s) {unknown}; accepted: {sorted(names)}")
    required = {
        f.name for f in dataclasses.fields(cls) if f.default is MISSING and f.default_factory is MISSING
    }
    missing = sorted(required - set(data))
    if missing:
        raise ConfigError(f"{where or 'top level'}: missing key(s) {missing}")
    values = {}
    for key, value in data.items():
        values[key] = _coerce(hints[key], value, f"{where}.{key}" if where else key)
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if origin is list and isinstance(value, list):
        (inner,) = typing.get_args(hint)
        return [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        _, inner = typing.get_args(hint)
        return {k: _coerce(inner, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(option, value, where)
            except ConfigError:
                pass
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{where}: expected {name}, got {value!r} ({type(value).__name__})")


def apply_overrides(data: dict, overrides: list[str], literal: bool = False) -> dict:
    """Apply ``key.sub=value`` strings to a nested dict; values are parsed as YAML unless ``literal``."""
    option = "--set-str" if literal else "--set"
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{option} {item!r}: expected key=value, e.g. train.seed=3")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{option} {item!r}: {part!r} is not a section")
        try:
            node[parts[-1]] = raw if literal else yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"--set {item!r}: the value is not valid YAML ({str(err).splitlines()[0]}); "
                "use --set-str KEY=TEXT for a string such as a path with quotes or colons"
            ) from None
    return data


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, literal_overrides: list[str] | None = None
) -> RunConfig:
    """Read a YAML run config (or start from defaults), apply overrides (then literal ones), validate."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    data = apply_overrides(data, overrides or [])
    data = apply_overrides(data, literal_overrides or [], literal=True)
    source = str(path) if path else "<command line>"
    try:
        config = from_dict(RunConfig, data, "")
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    validate(config, source)
    return config


def validate(config: RunConfig, source: str) -> None:
    t = config.train
    if t.optimizer not in _OPTIMIZERS:
        raise ConfigError(f"{source}: train.optimizer={t.optimizer!r}; accepted: {list(_OPTIMIZERS)}")
    if t.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"{source}: train.device={t.device!r}; accepted: auto, cpu, cuda")
    if t.precision not in _PRECISIONS:
        raise ConfigError(f"{source}: train.precision={t.precision!r}; accepted: {', '.join(_PRECISIONS)}")
    try:  # the patterns are matched against the model's names later, by the DSD controller
        config.masking.validate()
    except MaskingError as err:
        raise ConfigError(f"{source}: {err}") from None
    if not config.task or ":" not in config.task:
        raise ConfigError(f"{source}: task must name a factory as 'module:function', got {config.task!r}")
    if config.schedule in ("", None, []):
        raise ConfigError(
            f"{source}: schedule is missing; set it in the config or pass --schedule D10:1e-3,..."
        )
    for key, minimum in (
        ("grad_clip", 0),
        ("weight_decay", 0),
        ("checkpoint_every_steps", 0),
        ("max_nonfinite_steps", 1),
        ("keep_checkpoints", 1),
    ):
        if getattr(t, key) < minimum:
            raise ConfigError(f"{source}: train.{key}={getattr(t, key)} must be >= {minimum}")
    if not 0.0 <= t.momentum < 1.0 or (t.optimizer == "nesterov" and t.momentum == 0):
        raise ConfigError(f"{source}: train.momentum={t.momentum} must be in [0, 1) (and > 0 for nesterov)")
    if not t.eval_splits:
        raise ConfigError(
            f"{source}: train.eval_splits is empty; name the held-out splits to score, e.g. [dev, test]"
        )


def to_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
