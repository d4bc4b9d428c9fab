"""``dsd-seq compare``: a DSD schedule and its equal-epoch baselines over several seeds, resumable.

For each seed one dense phase is trained once and shared, as the recipes do: DSD, LLR and fine-tuning
continue from its ``phase1-end.pt``. That is the paper's comparison made fair: the three start from the
same weights, seed and data, and differ only in what they do after the dense phase. Each run is an
ordinary ``dsd-seq train`` folder ``OUT/seed<S>/{dsd,llr,finetune}``, so running compare again skips
finished runs and resumes interrupted ones from their newest checkpoint. Every finished run is appended
to the run store (``OUT/runs.jsonl``) and the report is rebuilt from the store.

With ``jobs=1`` the runs train one after another in this process; with more, each run is a separate
``python -m dsd_seq.cli train`` process (its output in ``<run>/train.log``), at most ``jobs`` at a time.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from dsd_seq.core.schedule import DENSE, Schedule
from dsd_seq.experiments.run_store import append_record, config_hash, read_run_config, read_store, run_record
from dsd_seq.training.config import ConfigError, RunConfig

#: The continuations of the shared dense phase, and the ``train`` options that select each.
CONTINUATIONS = {"dsd": (), "llr": ("--baseline", "llr"), "finetune": ("--baseline", "finetune")}


class CompareError(RuntimeError):
    """Some runs failed or were interrupted; the finished ones are kept and a re-run continues."""


@dataclass(frozen=True)
class PlannedRun:
    """One ``dsd-seq train`` call: the shared dense phase (``kind="dense"``) or a continuation."""

    seed: int
    kind: str
    exp_dir: Path
    argv: tuple[str, ...]
    phases: int

    def finished_phases(self) -> int:
        path = self.exp_dir / "results.json"
        try:
            return len(json.loads(path.read_text())["phases"])
        except (OSError, ValueError, KeyError):
            return 0

    @property
    def done(self) -> bool:
        return self.finished_phases() >= self.phases

    @property
    def name(self) -> str:
        return f"seed {self.seed} {self.kind}"


def seed_dir(out: Path, seed: int) -> Path:
    return out / f"seed{seed}"


def plan_runs(
    config_path: Path,
    schedule: Schedule,
    seeds: list[int],
    out: Path,
    overrides: list[str],
    literal_overrides: list[str],
) -> list[PlannedRun]:
    """Every run of the comparison, each seed's dense phase before its continuations."""
    if schedule[0].kind != DENSE or not schedule.has_sparse_phase:
        raise ConfigError(
            f"{config_path}: compare needs a DSD schedule that starts dense and has a sparse phase, got "
            f"{schedule.compact()}"
        )
    common = [f"--set={o}" for o in overrides] + [f"--set-str={o}" for o in literal_overrides]
    runs = []
    for seed in seeds:
        base = seed_dir(out, seed)
        shared = ("train", "--config", str(config_path), "--resume", *common, f"--set=train.seed={seed}")
        dense_dir = base / "dsd"
        runs.append(PlannedRun(seed, "dense", dense_dir, (*shared, "--exp-dir", str(dense_dir), "--until-phase", "1"), 1))  # fmt: skip
        for kind, options in CONTINUATIONS.items():
            exp_dir = base / kind
            init = () if kind == "dsd" else ("--init-from", str(dense_dir / "checkpoints" / "phase1-end.pt"))
            runs.append(PlannedRun(seed, kind, exp_dir, (*shared, "--exp-dir", str(exp_dir), *options, *init), len(schedule)))  # fmt: skip
    return runs


def expected_hash(config: RunConfig) -> str:
    """The store's hash of the configuration every run of this comparison trains with."""
    return config_hash(dataclasses.asdict(config))


def record_finished(runs: list[PlannedRun], store: Path) -> int:
    """Append a store line for each finished continuation not yet in the store; returns how many."""

    def results(record: dict) -> str:
        return json.dumps(record["phases"], sort_keys=True)

    known: dict[tuple, str] = {}  # the last line of a (config, seed, kind) counts
    if store.is_file():
        known = {(r["config_hash"], r["seed"], r["kind"]): results(r) for r in read_store(store)}
    added = 0
    for run in runs:
        if run.kind == "dense" or not run.done:
            continue
        key = (config_hash(read_run_config(run.exp_dir)), run.seed, run.kind)
        record = run_record(run.exp_dir, run.kind, run.seed)
        if known.get(key) != results(record):  # new, or trained again since it was recorded
            append_record(store, record)
            known[key] = results(record)
            added += 1
    return added


def _train_in_process(run: PlannedRun) -> int:
    from dsd_seq.cli import main  # the command line is the one entry point that builds tasks

    return main(list(run.argv))


def _train_in_subprocess(run: PlannedRun) -> int:
    run.exp_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "dsd_seq.cli", *run.argv, "--set=train.progress=false"]
    with (run.exp_dir / "train.log").open("a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def execute(runs: list[PlannedRun], jobs: int, store: Path) -> list[str]:
    """Train what is not finished, dense phases first; returns the problems (empty when all finished)."""
    dense = {r.seed: r for r in runs if r.kind == "dense"}
    pending = [r for r in runs if not r.done]
    bar = tqdm(total=len(runs), initial=len(runs) - len(pending), desc="compare: runs", unit="run")
    problems: list[str] = []

    def finished(run: PlannedRun, code: int) -> None:
        if run.done:
            bar.update(1)
            record_finished([run], store)
        elif code:
            log = f" (log: {run.exp_dir / 'train.log'})" if jobs > 1 else ""
            problems.append(f"{run.name} failed with exit code {code}{log}")
        else:
            problems.append(f"{run.name} stopped before its end (interrupted)")

    try:
        if jobs == 1:
            for run in pending:
                if run.kind != "dense" and not dense[run.seed].done:
                    continue  # its dense phase failed: already reported
                finished(run, _train_in_process(run))
                if problems and problems[-1].endswith("(interrupted)"):
                    break
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                ready = [r for r in pending if r.kind == "dense" or dense[r.seed].done]
                waiting = [r for r in pending if r not in ready]
                futures = {pool.submit(_train_in_subprocess, r): r for r in ready}
                try:
                    while futures:
                        done, _ = concurrent.futures.wait(
                            futures, return_when=concurrent.futures.FIRST_COMPLETED
                        )
                        for future in done:
                            run = futures.pop(future)
                            finished(run, future.result())
                            if run.kind == "dense" and run.done:
                                for follow in [r for r in waiting if r.seed == run.seed]:
                                    waiting.remove(follow)
                                    futures[pool.submit(_train_in_subprocess, follow)] = follow
                except KeyboardInterrupt:
                    # the running trainers got the Ctrl-C too: they save their position and exit
                    pool.shutdown(wait=True, cancel_futures=True)
                    problems.append("compare was interrupted (Ctrl-C)")
    finally:
        bar.close()
    for run in runs:
        if run.kind != "dense" and not run.done and not dense[run.seed].done:
            problems.append(
                f"{run.name} not started: its dense phase ({dense[run.seed].exp_dir}) did not finish"
            )
    return problems
