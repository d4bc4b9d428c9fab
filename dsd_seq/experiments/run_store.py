"""The run store: one JSON line per finished run, so that reports can be regenerated without retraining.

A record holds what a report needs and what says where a number came from: the config hash (the run's
configuration without its seed and without settings that do not change the computation, see
:func:`dsd_seq.training.config.fingerprint`), the seed, the run kind (``dsd``, ``llr``, ``final_lr``),
the comparison's design (``per-seed`` or ``shared-baseline``; records without one are per-seed), the
per-phase results, package versions and the git commit.
Lines are only ever appended; when a run is recorded twice the last line counts.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml

import dsd_seq
from dsd_seq.experiments.report import load_results
from dsd_seq.experiments.training_fit import METRICS_NAME, last_epoch_train_loss
from dsd_seq.training.config import fingerprint

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


def environment() -> dict[str, Any]:
    """Versions and the git commit of the dsd-seq source that ran (None outside a git checkout)."""
    source = Path(dsd_seq.__file__).resolve().parent
    commit = _git(source, "rev-parse", "HEAD")
    dirty = _git(source, "status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "versions": {
            "dsd_seq": dsd_seq.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "git_commit": commit,
        "git_dirty": bool(dirty) if commit else None,
    }


def run_record(
    exp_dir: str | Path, kind: str, seed: int | None = None, design: str | None = None
) -> dict[str, Any]:
    """The store line of a finished run, from what the run left on disk (results.json, config.yaml);
    ``design`` is the comparison's (``dsd-seq compare``), absent for a single run."""
    results = load_results(exp_dir)
    config = read_run_config(exp_dir)
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
        "train_loss": {str(k): v for k, v in last_epoch_train_loss(Path(exp_dir) / METRICS_NAME).items()},
        **({"optimizer_state": results["optimizer_state"]} if "optimizer_state" in results else {}),
        "exp_dir": str(exp_dir),
        **({"design": design} if design else {}),
        "recorded_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **environment(),
    }


def append_record(store: str | Path, record: dict[str, Any]) -> None:
    """Append one line with a single write, flushed to disk: a crash leaves whole lines only."""
    store = Path(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    with store.open("a", encoding="utf-8") as f:
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


def latest_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (config hash, seed, kind): the last one written."""
    latest: dict[tuple, dict] = {}
    for record in records:
        latest[(record["config_hash"], record["seed"], record["kind"])] = record
    return list(latest.values())


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
