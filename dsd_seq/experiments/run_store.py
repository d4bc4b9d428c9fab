"""The run store: one JSON line per finished run, so that reports can be regenerated without retraining.

A record holds what a report needs and what says where a number came from: the config hash (the run's
configuration without its seed and without settings that do not change the computation, see
:func:`dsd_seq.training.config.fingerprint`), the seed, the run kind (``dsd``, ``llr``, ``final_lr``),
the comparison's design (``per-seed`` or ``shared-baseline``; records without one are per-seed), the
per-phase results, package versions and the git commit the run trained with.
Lines are only ever appended; when a run is recorded twice the last line counts.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import yaml

from dsd_seq.experiments.report import load_results
from dsd_seq.experiments.training_fit import METRICS_NAME, last_epoch_train_loss
from dsd_seq.safe_io import open_no_follow
from dsd_seq.training.config import fingerprint
from dsd_seq.training.provenance import environment, run_environment

STORE_FORMAT = 1
#: The store's file name in a ``dsd-seq compare --out`` folder.
STORE_NAME = "runs.jsonl"
#: Run kinds renamed since records were written: read under their new name (``finetune`` was the final-LR
#: control, renamed because the paper's fine-tuning is the LLR schedule from a shared baseline).
RENAMED_KINDS = {"finetune": "final_lr"}


class RunStoreError(ValueError):
    """A store file that cannot be read; the message names the file and the line."""


def read_run_config(exp_dir: str | Path) -> dict[str, Any]:
    path = Path(exp_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {exp_dir} is not a dsd-seq training run")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def run_record(
    exp_dir: str | Path,
    kind: str,
    seed: int | None = None,
    design: str | None = None,
    started_from: str | Path | None = None,
) -> dict[str, Any]:
    """The store line of a finished run, from what the run left on disk (results.json, config.yaml);
    ``design`` is the comparison's (``dsd-seq compare``), absent for a single run. The versions and commit
    are those the run's phases trained with (their ``results.json`` rows); only for results written
    before rows carried them is it the code that records the run. ``started_from``: the run folder whose
    phase end this run continued (``--init-from``; by default the one its ``results.json`` names); the
    training losses of the phases before it come from there, so that a continuation's fit table has its
    dense phase too."""
    results = load_results(exp_dir)
    config = read_run_config(exp_dir)
    origin = checkpoint_run_folder(results.get("started_from"))  # what the run itself noted
    return {
        "format": STORE_FORMAT,
        "config_hash": fingerprint(config),
        "seed": config.get("train", {}).get("seed", 0) if seed is None else seed,
        "kind": kind,
        "run": results.get("run"),
        "schedule": results.get("schedule"),
        "dsd_schedule": config.get("schedule"),
        "metric": results.get("metric"),
        "higher_is_better": results.get("higher_is_better"),
        "phases": results["phases"],
        "train_loss": {str(k): v for k, v in _train_loss(exp_dir, started_from or origin).items()},
        **({"optimizer_state": results["optimizer_state"]} if "optimizer_state" in results else {}),
        "exp_dir": str(exp_dir),
        **({"design": design} if design else {}),
        "recorded_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **_environment(results["phases"]),
    }


def checkpoint_run_folder(checkpoint: str | Path | None) -> Path | None:
    """The run folder a checkpoint was saved in (``RUN/checkpoints/NAME.pt``): what ``started_from`` of
    :func:`run_record` is for a run continued with ``--init-from checkpoint``. None for a checkpoint kept
    anywhere else: no run's log stands beside it."""
    if checkpoint is None or Path(checkpoint).parent.name != "checkpoints":
        return None
    return Path(checkpoint).parent.parent


def _train_loss(exp_dir: str | Path, started_from: str | Path | None) -> dict[int, float]:
    """Each finished phase's last-epoch training loss: this run's own, and the earlier phases' from the run
    it continued (the phases below the first one it trained itself)."""
    own = last_epoch_train_loss(Path(exp_dir) / METRICS_NAME)
    if started_from is None or not own:
        return own
    earlier = last_epoch_train_loss(Path(started_from) / METRICS_NAME)
    return {**{phase: loss for phase, loss in earlier.items() if phase < min(own)}, **own}


def _environment(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The code the run's phases trained with, from its rows; results written before rows named it get
    the code that records the run (``environment_at`` says which)."""
    trained = run_environment(rows)
    if trained is not None:
        return {**trained, "environment_at": "training"}
    return {**environment(), "environment_at": "recording"}


def check_store(store: str | Path) -> None:
    """Before a run trains: the store can be appended to (not a folder, not a link, its folder writable),
    so that a run of hours does not end in an error that loses its record."""
    store = Path(store)
    if store.is_dir():
        raise RunStoreError(f"--store {store} is a folder; name a file, e.g. {store / STORE_NAME}")
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        os.close(open_no_follow(store, os.O_WRONLY | os.O_APPEND | os.O_CREAT))
    except OSError as err:
        raise RunStoreError(
            f"--store {store} cannot be written ({err.strerror or err}); choose another file"
        ) from None


def append_record(store: str | Path, record: dict[str, Any]) -> None:
    """Append one line with a single write, flushed to disk: a crash leaves whole lines only."""
    store = Path(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_no_follow(store, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_store(store: str | Path) -> list[dict[str, Any]]:
    """Every record, in file order. A damaged line is an error naming it (not silently skipped)."""
    store = Path(store)
    if not store.is_file():
        raise FileNotFoundError(f"run store {store} does not exist: run `dsd-seq compare` first")
    records = []
    for number, line in enumerate(store.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise RunStoreError(
                f"{store} line {number} is not valid JSON ({err.msg}); delete that line and re-run "
                "`dsd-seq compare`, which records any finished run missing from the store"
            ) from None
        if not isinstance(record, dict) or record.get("format") != STORE_FORMAT:
            raise RunStoreError(f"{store} line {number} is not a dsd-seq run record (format {STORE_FORMAT})")
        record["kind"] = RENAMED_KINDS.get(record.get("kind"), record.get("kind"))
        records.append(record)
    return records


def record_key(record: dict[str, Any]) -> tuple:
    """What names a run within a store: its configuration, the dense baseline it continued (several under
    ``compare --baselines``; records without one continued seed 0's, or their own), its seed and kind."""
    return (record["config_hash"], record.get("baseline_seed"), record["seed"], record["kind"])


def latest_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per :func:`record_key`: the last one written."""
    latest: dict[tuple, dict] = {}
    for record in records:
        latest[record_key(record)] = record
    return list(latest.values())
