"""Typed run configuration, loaded from YAML; unknown keys and wrong types are errors.

``--set section.key=value`` on the command line overrides any field (the value is parsed as YAML);
``--set-str section.key=text`` sets a string verbatim, so a path with spaces, quotes or colons needs no
quoting beyond the shell's.
The configuration that ran is saved beside the run as ``config.yaml``. :func:`fingerprint` names a
configuration for the run store and :func:`diff` says what a resumed run would change; both read the
same flattened keys (``train.seed``, ``task_args.data.train``, ...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dsd_seq.core.masking_config import MaskingConfig, MaskingError
from dsd_seq.core.schedule import Schedule, ScheduleError
from dsd_seq.core.selection import SelectionConfig
from dsd_seq.training.checkpoint_average import AverageError, parse_rule
from dsd_seq.training.dev_selection import HANDOVERS, check_select_on


class ConfigError(ValueError):
    """An invalid configuration; the message names the key, the file and the accepted values."""


@dataclass
class TrainConfig:
    optimizer: str = "adam"  # sgd | nesterov | adam | adamw | rmsprop (NeuralTalk's)
    momentum: float = 0.9
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0 disables clipping
    seed: int = 0
    checkpoint_every_steps: int = 0  # extra mid-epoch checkpoints; 0 = at epoch ends only
    keep_checkpoints: int = 3  # recent step checkpoints kept (phase-end ones are always kept)
    max_nonfinite_steps: int = 20  # consecutive NaN/inf losses before the run stops
    max_nonfinite_fraction: float = 0.25  # share of a phase's steps skipped (NaN/inf) that stops the run
    num_threads: int = 0  # torch intra-op threads; 0 = torch's default
    device: str = "auto"  # auto | cpu | cuda (under torchrun: cuda:LOCAL_RANK)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast forward; fp16 with a gradient scaler)
    eval_splits: list[str] = field(default_factory=lambda: ["dev", "test"])
    tensorboard: bool = True
    progress: bool = True
    # the optimizer's state at phase boundaries (dsd_seq.core.optimizer_state): keep | reset
    optimizer_state_at_phase: str = "keep"
    # at re-dense: keep | reset_tensors (drop the re-densed tensors' state: Adam's bias correction restarts)
    redense_state: str = "keep"
    # each phase's kept epoch (dsd_seq.training.dev_selection): what a fixed phase selects on (a phase
    # with an until rule selects on its monitor), and what a phase hands on: its last epoch or that one
    select_on: str = "dev_loss"
    handover: str = "last"
    # checkpoint averaging at each phase end (dsd_seq.training.checkpoint_average): "" off, last:N, best:N
    average: str = ""


@dataclass
class RunConfig:
    task: str = ""  # "module:factory" building the task, e.g. "models.speech.speech_task:build_task"
    task_args: dict[str, Any] = field(default_factory=dict)
    schedule: Any = ""  # compact string or list of phases (see dsd_seq.core.schedule)
    selection: SelectionConfig = field(default_factory=SelectionConfig)  # which weights are prunable
    masking: MaskingConfig = field(default_factory=MaskingConfig)  # criterion, scope, per-layer overrides
    train: TrainConfig = field(default_factory=TrainConfig)


_OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop")
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


_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-8 (no dot) as text; as a float field's value it is a number
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


SEED_LIMIT = 2**63  # torch.manual_seed takes a 64-bit seed
INT64 = 2**63


def _bounds(low: float | None, high: float | None, high_open: bool, integer: bool) -> tuple[str, str]:
    """(short, full) descriptions of a range: ">= 1" and "an integer in [1, 2**63)"."""
    kind = "an integer" if integer else "a finite number"
    shown = "2**63" if high == INT64 else str(high)
    if low is not None and high is not None:
        interval = f"in [{low}, {shown}{')' if high_open else ']'}"
        return (f">= {low}" if high == INT64 else interval), f"{kind} {interval}"
    if low is not None:
        return f">= {low}", f"{kind} >= {low}"
    return "finite", kind


def check_number(
    where: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Refuse a bool, a non-finite number or one out of range, naming the key and the accepted range."""
    short, accepted = _bounds(low, high, high_open, integer)
    wrong_type = isinstance(value, bool) or not isinstance(value, int if integer else int | float)
    if (
        wrong_type
        or not math.isfinite(value)
        or (low is not None and value < low)
        or (high is not None and (value >= high if high_open else value > high))
    ):
        raise ConfigError(f"{where}={value!r} must be {short} (accepted: {accepted})")


def _finite_everywhere(value: Any, where: str) -> None:
    """No NaN or infinity (and no integer past 64 bits) anywhere, task_args and schedule lists included:
    one such number is written into every weight by the first step."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _finite_everywhere(inner, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for i, inner in enumerate(value):
            _finite_everywhere(inner, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}={value!r} must be finite (accepted: a finite number)")
    elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        raise ConfigError(f"{where}={value!r} must fit in 64 bits (accepted: an integer in [-2**63, 2**63))")


def validate(config: RunConfig, source: str) -> None:
    try:
        _validate(config, source)
    except ConfigError as err:
        message = str(err)
        raise ConfigError(message if message.startswith(f"{source}: ") else f"{source}: {message}") from None


def _validate(config: RunConfig, source: str) -> None:
    t = config.train
    if t.optimizer not in _OPTIMIZERS:
        raise ConfigError(f"{source}: train.optimizer={t.optimizer!r}; accepted: {list(_OPTIMIZERS)}")
    if t.optimizer_state_at_phase not in ("keep", "reset"):
        raise ConfigError(
            f"{source}: train.optimizer_state_at_phase={t.optimizer_state_at_phase!r}; accepted: keep, reset"
        )
    if t.redense_state not in ("keep", "reset_tensors"):
        raise ConfigError(f"{source}: train.redense_state={t.redense_state!r}; accepted: keep, reset_tensors")
    select_problem = check_select_on(t.select_on)
    if select_problem:
        raise ConfigError(f"{source}: {select_problem}")
    try:
        parse_rule(t.average)
    except AverageError as err:
        raise ConfigError(f"{source}: {err}") from None
    if t.handover not in HANDOVERS:
        raise ConfigError(f"{source}: train.handover={t.handover!r}; accepted: {', '.join(HANDOVERS)}")
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
    check_number("train.grad_clip", t.grad_clip, 0)  # 0 disables clipping
    check_number("train.weight_decay", t.weight_decay, 0, 1)  # above 1 a step flips or blows up weights
    check_number("train.max_nonfinite_fraction", t.max_nonfinite_fraction, 0, 1)
    for key, minimum, limit in (
        ("checkpoint_every_steps", 0, INT64),
        ("max_nonfinite_steps", 1, INT64),
        ("keep_checkpoints", 1, INT64),
        ("num_threads", 0, 1025),  # 0: torch's default
        ("seed", 0, SEED_LIMIT),
    ):
        check_number(f"train.{key}", getattr(t, key), minimum, limit, high_open=True, integer=True)
    if not 0.0 <= t.momentum < 1.0 or (t.optimizer == "nesterov" and t.momentum == 0):
        raise ConfigError(f"{source}: train.momentum={t.momentum} must be in [0, 1) (and > 0 for nesterov)")
    if not t.eval_splits:
        raise ConfigError(
            f"{source}: train.eval_splits is empty; name the held-out splits to score, e.g. [dev, test]"
        )
    _finite_everywhere(dataclasses.asdict(config), "")  # after the checks above, which name the range
    try:  # every phase's settings (a method's too: docs/methods/) are checked when the config is read
        Schedule.from_config(config.schedule)
    except ScheduleError as err:
        raise ConfigError(f"{source}: {err}") from None


def to_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)


#: Config keys that may change between a run and its resumption (they do not change the computation);
#: a key names itself and everything under it (``task_args.data`` covers ``task_args.data.train``).
RESUMABLE_CHANGES = (
    "schedule",
    "task_args.data",
    "train.progress",
    "train.tensorboard",
    "train.num_threads",
    "train.device",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.max_nonfinite_steps",
    "train.max_nonfinite_fraction",
    "train.eval_splits",
)
#: Keys the fingerprint leaves out: the seed (runs of one experiment differ only in it) and the resumable
#: ones but the schedule. The fingerprint therefore names a configuration, not the contents of its data.
NOT_FINGERPRINTED = ("train.seed", *(k for k in RESUMABLE_CHANGES if k != "schedule"))
#: The keys every configuration had when the run store's first records were written. A key added to
#: :class:`RunConfig` since is fingerprinted only when set to something other than its default, so the
#: configurations of earlier runs keep their fingerprint (and their stored comparisons).
_FINGERPRINTED_FROM_THE_START = (
    "task",
    "task_args",
    "schedule",
    "selection.types",
    "selection.include",
    "selection.exclude",
    "masking.scope",
    "masking.overrides",
    "train.checkpoint_every_steps",
    "train.device",
    "train.eval_splits",
    "train.grad_clip",
    "train.keep_checkpoints",
    "train.max_nonfinite_steps",
    "train.momentum",
    "train.num_threads",
    "train.optimizer",
    "train.precision",
    "train.progress",
    "train.seed",
    "train.tensorboard",
    "train.weight_decay",
)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"seed": 0}}`` -> ``{"train.seed": 0}``. An empty mapping adds no key, so ``{}`` and an
    absent section agree; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def fingerprint(config: dict[str, Any]) -> str:
    """A short stable hash of a configuration (as saved in ``config.yaml``), without NOT_FINGERPRINTED."""
    defaults = _defaults()
    kept = {
        k: v
        for k, v in flatten(config).items()
        if not _under(k, NOT_FINGERPRINTED)
        and (_under(k, _FINGERPRINTED_FROM_THE_START) or k not in defaults or v != defaults[k])
    }
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def diff(saved: dict[str, Any], current: dict[str, Any], also_resumable: tuple[str, ...] = ()) -> list[str]:
    """What resuming a run saved with ``saved`` under ``current`` would change, as 'key: old -> new',
    RESUMABLE_CHANGES (and a task's ``also_resumable``) aside. A key the saved config lacks (one added to
    RunConfig since) counts as its default, so adding a config key with a default never stops older runs
    from resuming."""
    resumable = (*RESUMABLE_CHANGES, *also_resumable)
    return [line for key, line in _changes(saved, current) if not _under(key, resumable)]


def accepted_changes(
    saved: dict[str, Any], current: dict[str, Any], also_resumable: tuple[str, ...] = ()
) -> list[str]:
    """The changes a resumed run accepts (they do not change the computation), to tell the user."""
    resumable = tuple(k for k in (*RESUMABLE_CHANGES, *also_resumable) if k != "schedule")
    return [line for key, line in _changes(saved, current) if _under(key, resumable)]


def _changes(saved: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, str]]:
    old, new = {**_defaults(), **flatten(saved)}, flatten(current)
    keys = sorted(set(old) | set(new))
    return [(k, f"{k}: {old.get(k)!r} -> {new.get(k)!r}") for k in keys if old.get(k) != new.get(k)]


def _defaults() -> dict[str, Any]:
    return flatten(dataclasses.asdict(RunConfig()))


def _under(key: str, names: tuple[str, ...]) -> bool:
    return any(key == name or key.startswith(name + ".") for name in names)
