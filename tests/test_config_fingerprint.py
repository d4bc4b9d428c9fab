"""One flattening of a run config serves the run store's fingerprint and resume's diff: the fingerprint
keeps the values stored runs were recorded under; a key added to RunConfig since a run was saved counts
as its default in both (so it neither stops the run from resuming nor changes its fingerprint)."""

import dataclasses
import json
from pathlib import Path

import pytest

from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import CheckpointError
from dsd_seq.training import config as config_module
from dsd_seq.training.config import diff, fingerprint, flatten, load_config
from tests.toy_task import toy_trainer

ROOT = Path(__file__).resolve().parents[1]


def _config(*overrides):
    return dataclasses.asdict(
        load_config(None, ["task=tests.toy_task:build_toy_task", "schedule=D1:1e-3", *overrides])
    )


def test_flatten_names_leaves_by_dotted_keys_and_empty_sections_add_none():
    flat = flatten(
        {"train": {"seed": 3, "eval_splits": ["dev"]}, "masking": {"overrides": {}}, "task": "m:f"}
    )
    assert flat == {"train.seed": 3, "train.eval_splits": ["dev"], "task": "m:f"}


def test_the_fingerprint_of_the_recipe_config_is_the_one_its_stored_comparison_was_recorded_under():
    store = ROOT / "docs" / "examples" / "compare-synth-speech" / "runs.jsonl"
    recorded = {json.loads(line)["config_hash"] for line in store.read_text().splitlines()}
    config = load_config(ROOT / "egs" / "synth_speech" / "conf" / "train.yaml")
    assert recorded == {fingerprint(dataclasses.asdict(config))}


def test_the_fingerprint_leaves_out_the_seed_and_what_may_change_on_resume():
    base = fingerprint(_config())
    assert fingerprint(_config("train.seed=7", "train.device=cpu", "task_args.data={dev: /x.pt}")) == base
    assert fingerprint(_config("train.momentum=0.5")) != base
    assert fingerprint(_config("schedule=D2:1e-3")) != base  # the schedule is part of the configuration


def test_a_key_added_since_keeps_older_fingerprints_while_at_its_default(monkeypatch):
    current = _config()
    before_the_key = _config()
    del before_the_key["train"]["grad_clip"]  # a config saved before train.grad_clip existed
    original = config_module._FINGERPRINTED_FROM_THE_START
    monkeypatch.setattr(
        config_module, "_FINGERPRINTED_FROM_THE_START", tuple(k for k in original if k != "train.grad_clip")
    )
    assert fingerprint(before_the_key) == fingerprint(current)
    assert fingerprint(_config("train.grad_clip=1.0")) != fingerprint(current)  # set: hashed


def test_diff_names_changed_keys_and_ignores_resumable_ones():
    saved = _config()
    assert diff(saved, _config("train.device=cpu", "train.keep_checkpoints=9", "task_args.data={a: b}")) == []
    assert diff(saved, _config("train.momentum=0.5", "task_args.hidden=8")) == [
        "task_args.hidden: None -> 8",
        "train.momentum: 0.9 -> 0.5",
    ]


def test_a_key_absent_from_the_saved_config_compares_equal_to_its_default():
    saved = _config()
    del saved["train"]["grad_clip"]
    del saved["masking"]
    assert diff(saved, _config()) == []
    assert diff(saved, _config("train.grad_clip=1.0")) == ["train.grad_clip: 0.0 -> 1.0"]


def test_a_run_saved_before_a_config_key_existed_resumes(tmp_path):
    schedule = Schedule.parse("D2:1e-2")
    toy_trainer(tmp_path, schedule).run(stop_after_steps=3)
    last = tmp_path / "checkpoints" / "last.pt"
    trainer = toy_trainer(tmp_path, schedule)
    state = trainer.checkpoint_dir.newest_valid()[1]
    del state["config"]["train"]["max_nonfinite_steps"]  # as written before that key was added
    trainer.load(last, state=state)
    assert trainer.position.global_step == 3
    del state["config"]["train"]["grad_clip"]  # its default (0) is not what the toy trainer runs with (1.0)
    with pytest.raises(CheckpointError, match=r"train.grad_clip: 0.0 -> 1.0"):
        trainer.load(last, state=state)
