"""Every number in a run config is refused before any work, naming the key and the accepted range,
unless a run with it stays finite: non-finite values (YAML .nan/.inf, 1e999 in a schedule), negative
counts, seeds past 64 bits and booleans where a number belongs."""

import dataclasses
import math
import random
import typing

import pytest
import torch

from dsd_seq.cli import main
from dsd_seq.core.schedule import Schedule, ScheduleError
from dsd_seq.training.config import (
    ConfigError,
    MaskingConfig,
    RunConfig,
    TrainConfig,
    from_dict,
    load_config,
    validate,
)
from dsd_seq.training.task import build_task
from tests.toy_task import ToyTask, toy_trainer

BASE = ["task=tests.toy_task:build_toy_task", "schedule=D1:1e-3"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.grad_clip=.nan", r"train\.grad_clip=nan .*accepted: a finite number >= 0"),
        ("train.weight_decay=.inf", r"train\.weight_decay=inf .*accepted: a finite number in \[0, 1\]"),
        ("train.num_threads=-1", r"train\.num_threads=-1 .*accepted: an integer in \[0, 1025\)"),
        (
            "train.seed=100000000000000000000000",
            r"train\.seed=100000000000000000000000 .*accepted: an integer in \[0, 2\*\*63\)",
        ),
        ("train.seed=-1", r"train\.seed=-1 .*accepted"),
        ("train.seed=1e23", r"train\.seed: expected int, got '1e23'"),
        ("train.seed=1.0e+23", r"train\.seed: expected int, got 1e\+23"),
        ("train.keep_checkpoints=0", r"train\.keep_checkpoints=0 .*accepted: an integer in \[1, "),
        ("train.momentum=.nan", r"train\.momentum=nan must be in \[0, 1\)"),
        ("task_args={lr_scale: .inf}", r"task_args\.lr_scale=inf .*accepted: a finite number"),
        ("schedule=[{kind: dense, epochs: 1, lr: 0.01, extra: [1, .nan]}]", r"schedule\[0\]\.extra\[1\]=nan"),
    ],
)
def test_each_refusal_names_the_key_and_the_accepted_range(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [*BASE, override])


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("D1:1e999", r"phase 1 \(D1:inf\): lr must be a positive number .*got inf"),
        ("D1:1e-3,S1@0.5:1e400", r"phase 2 .*: lr must be a positive number"),
        ("D1:nan", r"phase 1: cannot parse 'D1:nan'"),
        (
            [{"kind": "dense", "epochs": 1, "lr": float("inf")}],
            r"phase 1.*: lr must be a positive number",
        ),
        ([{"kind": "dense", "epochs": 1, "lr": "nan"}], r"phase 1.*: lr must be a positive"),
        (
            [{"kind": "dense", "epochs": 1, "lr": 0.1, "lr_decay": float("nan")}],
            r"lr_decay must be in \(0, 1\]",
        ),
        (
            [{"kind": "dense", "epochs": True, "lr": 0.01}],
            r"epochs must be a positive integer \(accepted: 1 \.\. 2\*\*31 - 1\), got True",
        ),
        ([{"kind": "dense", "epochs": 2**40, "lr": 0.01}], r"epochs must be a positive integer"),
    ],
)
def test_a_schedule_with_a_non_finite_or_odd_number_is_refused(schedule, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.from_config(schedule)


def _toy_config(tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text(
        "task: tests.toy_task:build_toy_task\nschedule: D1:1e-2,S1@0.5:1e-2,D1:1e-2\n"
        "train: {progress: false, tensorboard: false, eval_splits: [test], num_threads: 1}\n"
    )
    return str(config)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schedule", ""], "--schedule is empty"),
        (["--schedule", "  "], "--schedule is empty"),
        (["--until-phase", "-1"], r"--until-phase -1: accepted: 1 \.\. 3"),
        (["--until-phase", "0"], r"--until-phase 0: accepted: 1 \.\. 3"),
        (["--until-phase", "4"], r"--until-phase 4: accepted: 1 \.\. 3"),
        (["--set", "train.seed=-5"], r"train\.seed=-5 .*accepted"),
    ],
)
def test_the_command_line_refuses_before_any_work(tmp_path, capsys, args, message):
    exp = tmp_path / "exp"
    assert main(["train", "--config", _toy_config(tmp_path), "--exp-dir", str(exp), *args]) == 2
    assert __import__("re").search(message, capsys.readouterr().err)
    assert not exp.exists()


@pytest.mark.parametrize(
    ("factory", "args", "message"),
    [
        (
            "models.speech.speech_task:build_task",
            {"data": {"train": "x.pt"}, "max_bad_fraction": -0.1},
            r"task_args\.max_bad_fraction=-0\.1 .*accepted: a finite number in \[0\.0, 1\.0\]",
        ),
        (
            "models.speech.speech_task:build_task",
            {"data": {"train": "x.pt"}, "eval_batch_size": 0},
            r"task_args\.eval_batch_size=0 .*accepted: an integer in \[1, ",
        ),
        (
            "models.speech.speech_task:build_task",
            {"data": {"train": "x.pt"}, "batch_size": True},
            r"task_args\.batch_size",
        ),
        (
            "models.captioning.caption_task:build_task",
            {"dataset": "d.json", "features": "f.pt", "max_bad_fraction": 1.5},
            r"task_args\.max_bad_fraction=1\.5",
        ),
        (
            "models.captioning.caption_task:build_task",
            {"dataset": "d.json", "features": "f.pt", "beam_size": 0},
            r"task_args\.beam_size=0",
        ),
        (
            "models.captioning.caption_task:build_task",
            {"dataset": "d.json", "features": "f.pt", "length_penalty": float("nan")},
            r"task_args\.length_penalty=nan",
        ),
    ],
)
def test_task_options_are_range_checked_before_any_data_is_read(factory, args, message):
    with pytest.raises(ConfigError, match=message):  # the files named do not exist: nothing was read
        build_task(factory, args)


# --- property: refused with the key named, or accepted and the run stays finite ---------------------


def _numeric_fields():
    """(key, type) of every number in the config dataclasses (masking overrides: one glob's value)."""
    fields = []
    for prefix, cls in (("train", TrainConfig), ("masking", MaskingConfig)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] in (int, float):
                fields.append((f"{prefix}.{f.name}", hints[f.name]))
    fields.append(("masking.overrides", float))
    return fields


EXTREMES = [math.inf, -math.inf, math.nan, -1, -1e-300, 0, 1, 1e300, 2**63, 2**70, -(2**70), True, False, 0.5]


def _values(rng):
    return (
        EXTREMES
        + [rng.choice([-1, 1]) * 10 ** rng.uniform(-12, 30) for _ in range(4)]
        + [rng.randint(-3, 40) for _ in range(3)]
    )


def _yaml_number(value):
    """``value`` as YAML reads it back exactly (YAML 1.1 needs a dot before an exponent)."""
    text = repr(value)
    if isinstance(value, float) and "e" in text and "." not in text.split("e")[0]:
        text = text.replace("e", ".0e")
    return text


def test_every_numeric_field_is_refused_naming_it_or_runs_finite(tmp_path):
    rng = random.Random(14)
    fields = _numeric_fields()
    assert {k for k, _ in fields} >= {
        "train.seed",
        "train.grad_clip",
        "train.weight_decay",
        "train.num_threads",
    }
    accepted = []
    for key, _ in fields:
        section, name = key.split(".")
        for value in _values(rng):
            data = {"task": "tests.toy_task:build_toy_task", "schedule": "D1:1e-3"}
            data[section] = {name: {"out.*": value} if key == "masking.overrides" else value}
            try:  # the parsed values themselves (an override string would round them through YAML)
                validate(from_dict(RunConfig, data, ""), "<property test>")
            except ConfigError as err:
                assert key in str(err), (key, value, str(err))
                continue
            accepted.append((key, value))
    assert len(accepted) >= len(fields)  # something of each kind passes, so the runs below are real
    runs = {}  # per field, the accepted value farthest from zero: the one most likely to blow up a run
    for key, value in accepted:
        if key == "train.num_threads" and value > 2:
            continue  # a thread count does not touch the numbers; hundreds of threads would only be slow
        if key not in runs or abs(value) > abs(runs[key]):
            runs[key] = value
    for i, (key, value) in enumerate(runs.items()):
        text = _yaml_number(value)
        override = f"masking.overrides={{'out.*': {text}}}" if key == "masking.overrides" else f"{key}={text}"
        extra = ["train.optimizer=adam", "train.grad_clip=0", override]  # the defaults validated above
        schedule = Schedule.parse("D1:1e-2,S1@0.5:1e-2")
        trainer = toy_trainer(tmp_path / f"run{i}", schedule, extra, ToyTask(n=16))
        trainer.run()
        for name, tensor in trainer.model.state_dict().items():
            assert torch.isfinite(tensor.float()).all(), (key, value, name)
