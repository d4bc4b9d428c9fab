"""The run store: a config hash that ignores the seed and what does not change the computation, damaged
lines named, the last record of a run counting."""

import dataclasses
import json

import pytest

from dsd_seq.experiments.run_store import (
    RunStoreError,
    append_record,
    latest_records,
    read_store,
)
from dsd_seq.training.config import fingerprint, load_config

TOY = "task: tests.toy_task:build_toy_task\nschedule: D1:1e-2,S1@0.5:1e-2,D1:1e-3\n"


def _hash(tmp_path, *overrides):
    path = tmp_path / "run.yaml"
    path.write_text(TOY)
    return fingerprint(dataclasses.asdict(load_config(path, list(overrides))))


def test_config_hash_ignores_the_seed_and_settings_that_do_not_change_the_computation(tmp_path):
    base = _hash(tmp_path)
    assert _hash(tmp_path, "train.seed=4", "train.num_threads=1", "train.progress=false") == base
    assert _hash(tmp_path, "task_args.data={train: /elsewhere/train.pt}") == base
    assert _hash(tmp_path, "schedule=D1:1e-2,S1@0.8:1e-2,D1:1e-3") != base
    assert _hash(tmp_path, "train.weight_decay=0.01") != base


def test_records_append_and_the_last_one_of_a_run_counts(tmp_path):
    store = tmp_path / "runs.jsonl"
    for value in (1.0, 2.0):
        append_record(store, {"format": 1, "config_hash": "h", "seed": 0, "kind": "dsd", "value": value})
    append_record(store, {"format": 1, "config_hash": "h", "seed": 1, "kind": "dsd", "value": 3.0})
    records = read_store(store)
    assert len(records) == 3 and len(store.read_text().splitlines()) == 3
    assert sorted(r["value"] for r in latest_records(records)) == [2.0, 3.0]


def test_a_damaged_line_is_named_with_what_to_do(tmp_path):
    store = tmp_path / "runs.jsonl"
    append_record(store, {"format": 1, "config_hash": "h", "seed": 0, "kind": "dsd"})
    with store.open("a") as f:
        f.write('{"format": 1, "config_ha')
    with pytest.raises(RunStoreError, match=r"runs.jsonl line 2 is not valid JSON.*delete that line"):
        read_store(store)
    store.write_text(json.dumps({"something": "else"}) + "\n")
    with pytest.raises(RunStoreError, match="line 1 is not a dsd-seq run record"):
        read_store(store)
    with pytest.raises(FileNotFoundError, match="run `dsd-seq compare` first"):
        read_store(tmp_path / "missing.jsonl")
