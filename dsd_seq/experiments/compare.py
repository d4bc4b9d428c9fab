"""``dsd-seq compare``: a DSD schedule and its equal-epoch baselines over several seeds, resumable.

Two designs (``DESIGNS``). ``per-seed`` (the default): for each seed one dense phase is trained once and
shared, as the recipes do: DSD, LLR and the final-LR control continue from its ``phase1-end.pt``, so the
three start from the same weights, seed and data and differ only in what they do after the dense phase,
and the spread over seeds includes the dense phase's. ``shared-baseline`` is the paper's (Appendix A,
Table 10): one dense baseline trained once (seed 0, ``OUT/baseline``), then every seed continues it as
DSD and as fine-tuning with DSD's own learning rates (the LLR schedule), so the spread comes from
retraining only. Each run is an ordinary ``dsd-seq train`` folder ``OUT/seed<S>/<kind>``, so running
compare again skips finished runs and resumes interrupted ones from their newest checkpoint. Every finished run is appended
to the run store (``OUT/runs.jsonl``) and the report is rebuilt from the store. The recipes' training
stages run one seed's plan in their own folder (``dsd-seq plan-run``, :func:`plan_seed`).

With ``jobs=1`` the runs train one after another in this process; with more, each run is a separate
``python -m dsd_seq.cli train`` process (its output in ``<run>/train.log``), at most ``jobs`` at a time.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from dsd_seq.core.comparators import ARMS, arm_name, arm_schedule
from dsd_seq.core.schedule import DENSE, Schedule, ScheduleError
from dsd_seq.experiments.run_store import (
    append_record,
    checkpoint_run_folder,
    read_store,
    record_key,
    run_record,
)
from dsd_seq.safe_io import open_no_follow
from dsd_seq.training.config import ConfigError, RunConfig, fingerprint
from dsd_seq.training.run import RUN_ERRORS, TrainRequest

#: The continuations of the shared dense phase, and the baseline each trains (None: DSD itself); after
#: DSD's own baselines, the methods DSD is weighed against (``--arms``, :mod:`dsd_seq.core.comparators`).
CONTINUATIONS = {"dsd": None, "llr": "llr", "final_lr": "final_lr", **{arm: arm for arm in ARMS}}
#: Every kind of run of one seed's plan, in the order they train.
KINDS = ("dense", *CONTINUATIONS)
#: The comparison designs (see the module docstring) and the continuations each trains per seed unless
#: ``--arms`` names others: the paper's design compares DSD with its fine-tuning control only (the LLR
#: schedule from the baseline).
DESIGNS = {"per-seed": ("dsd", "llr", "final_lr"), "shared-baseline": ("dsd", "llr")}
#: Where the shared-baseline design trains its one dense baseline (seed 0), under OUT.
BASELINE_FOLDER = "baseline"
#: The largest seed list ``parse_seeds`` accepts: a typo such as 100-100000 fails at once.
MAX_SEEDS = 1000


def parse_seeds(text: str | int, option: str = "--seeds") -> list[int]:
    """``5`` (a count: seeds 0..4), ``100-104`` (a range, both ends included) or ``3,7,100-102`` (a list):
    the seeds in order, each once. Anyone can replicate a comparison on seeds it never used."""
    text = str(text).strip()
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= MAX_SEEDS:
            raise ConfigError(f"{option} {text}: a count must be in 1..{MAX_SEEDS}")
        return list(range(count))
    seeds: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ConfigError(
                f"{option} {text!r}: expected a count (5), a range (100-104) or a list (3,7,100-102) of "
                "non-negative whole numbers"
            )
        low, high = int(first), int(last) if dash else int(first)
        if high < low or high - low >= MAX_SEEDS:
            raise ConfigError(
                f"{option} {text!r}: the range {part.strip()} must run upwards, at most {MAX_SEEDS}"
            )
        seeds.extend(s for s in range(low, high + 1) if s not in seeds)
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"{option} {text!r}: at most {MAX_SEEDS} seeds")
    return seeds


def parse_arms(text: str | None, design: str, schedule: Schedule | None = None) -> tuple[str, ...]:
    """``--arms``: the continuations to train, comma-separated, DSD among them (default: the design's);
    a method's settings are checked on DSD's ``schedule`` (a short stand-in when None)."""
    if text is None:
        return DESIGNS[design]
    given = [a.strip() for a in str(text).split(",") if a.strip()]
    names = [arm_name(a) for a in given]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"--arms {text!r}: {', '.join(twice)} named more than once; each arm trains once per seed, in "
            "its own folder (compare other settings of one method in another --out folder)"
        )
    arms = dict(zip(names, given, strict=True))
    unknown = [a for a in arms if a not in CONTINUATIONS]
    if unknown or "dsd" not in arms:
        raise ConfigError(
            f"--arms {text!r}: {'unknown ' + ', '.join(unknown) if unknown else 'dsd is missing'}; accepted: "
            f"{', '.join(CONTINUATIONS)}, dsd always among them (e.g. dsd,llr,gmp,rigl,set,acdc; a method "
            "takes its settings after a slash: rigl/every=50)"
        )
    for name, arm in arms.items():
        if arm != name and name not in ARMS:
            raise ConfigError(f"--arms {text!r}: {name} takes no settings ({arm!r})")
        if name in ARMS:
            try:
                arm_schedule(arm, schedule or Schedule.parse("D1:1,S40@0.5:1"))  # names and values
            except ScheduleError as err:
                raise ConfigError(f"--arms: {err}") from None
    return tuple(arms[a] for a in CONTINUATIONS if a in arms)  # in the order they train


def parse_baselines(text: str | int) -> list[int]:
    """``--baselines``: a count K (dense baselines from seeds 0..K-1) or explicit seeds, as ``--seeds``."""
    return parse_seeds(text, "--baselines")


#: ``dsd-seq train``'s exit statuses when a signal stopped a run before its end (SIGINT, SIGTERM)
INTERRUPTED = (128 + signal.SIGINT, 128 + signal.SIGTERM)


class CompareError(RuntimeError):
    """Some runs failed or were interrupted; the finished ones are kept and a re-run continues."""


@dataclass(frozen=True)
class PlannedRun:
    """One ``dsd-seq train`` call: the shared dense phase (``kind="dense"``) or a continuation."""

    seed: int
    kind: str
    request: TrainRequest
    phases: int | None  # None: every phase of the schedule the run records (an arm's may have more)
    after: PlannedRun | None = None  # the run that must finish first (a dense phase, or DSD); None: none
    design: str = "per-seed"
    baseline_seed: int | None = None  # shared-baseline: the seed of the dense baseline it continues

    @property
    def exp_dir(self) -> Path:
        return self.request.exp_dir

    def finished_phases(self) -> int:
        return self._results()[0]

    def _results(self) -> tuple[int, int | None]:
        """(phases finished, phases of the schedule the run records) from its results.json."""
        path = self.exp_dir / "results.json"
        try:
            results = json.loads(path.read_text())
            return len(results["phases"]), len(Schedule.parse(results["schedule"]))
        except (OSError, ValueError, KeyError, TypeError):
            return 0, None

    @property
    def done(self) -> bool:
        finished, planned = self._results()
        wanted = self.phases if self.phases is not None else planned
        return wanted is not None and finished >= wanted

    @property
    def name(self) -> str:
        of = "" if self.baseline_seed is None else f" of baseline seed {self.baseline_seed}"
        return f"seed {self.seed} {self.kind}{of}"


def seed_dir(out: Path, seed: int) -> Path:
    return out / f"seed{seed}"


def plan_seed(
    config_path: Path,
    schedule: Schedule,
    folder: Path,
    seed: int,
    overrides: list[str],
    literal_overrides: list[str],
    init_from: Path | None = None,
    kinds: tuple[str, ...] = DESIGNS["per-seed"],
    design: str = "per-seed",
    after: PlannedRun | None = None,
) -> list[PlannedRun]:
    """One seed's runs in ``folder``, in KINDS order: the dense phase in ``folder/dsd``, then DSD's later
    phases there and each baseline in ``folder/<kind>``, started from the dense phase's end. With
    ``init_from`` (a dense phase-1 checkpoint trained elsewhere, e.g. the shared baseline) no dense run
    is planned and every continuation of ``kinds`` starts from that file (``after``: the run making it)."""
    if schedule[0].kind != DENSE or not schedule.has_sparse_phase:
        raise ConfigError(
            f"{config_path}: compare needs a DSD schedule that starts dense and has a sparse phase, got "
            f"{schedule.compact()}"
        )
    dense_dir = folder / "dsd"
    shared = dict(
        config=Path(config_path),
        overrides=(*overrides, f"train.seed={seed}"),
        literal_overrides=tuple(literal_overrides),
        resume=True,
    )
    runs = []
    if init_from is None:
        runs.append(PlannedRun(seed, "dense", TrainRequest(exp_dir=dense_dir, until_phase=1, **shared), 1))
        start, after = dense_dir / "checkpoints" / "phase1-end.pt", runs[0]
    else:
        start = Path(init_from)
    # phases that end at convergence: the baselines train the epochs DSD realized, so they follow it
    realized = schedule.ends_at_convergence and "dsd" in kinds
    dsd_run = None
    for arm in kinds:  # a method's arm may carry its settings: rigl/every=50 trains in folder rigl
        kind = arm_name(arm)
        baseline = CONTINUATIONS[kind] if arm == kind else arm
        init = None if baseline is None and init_from is None else start  # DSD resumes its dense folder
        epochs_from = folder / "dsd" / "results.json" if realized and baseline is not None else None
        request = TrainRequest(
            exp_dir=folder / kind, baseline=baseline, init_from=init, epochs_from=epochs_from, **shared
        )
        phases = None if kind in ARMS else len(schedule)  # AC/DC's alternation has phases of its own
        run = PlannedRun(seed, kind, request, phases, dsd_run if epochs_from else after, design)
        dsd_run = run if kind == "dsd" else dsd_run
        runs.append(run)
    return runs


def plan_runs(
    config_path: Path,
    schedule: Schedule,
    seeds: list[int],
    out: Path,
    overrides: list[str],
    literal_overrides: list[str],
    design: str = "per-seed",
    baselines: list[int] | tuple[int, ...] = (0,),
    arms: tuple[str, ...] | None = None,
) -> list[PlannedRun]:
    """Every run of the comparison, each dense phase before the continuations that need it; ``arms``:
    the continuations each seed trains (default: the design's, ``DESIGNS``)."""
    if design not in DESIGNS:
        raise ConfigError(f"compare design {design!r}; accepted: {', '.join(DESIGNS)}")
    if design == "per-seed" and list(baselines) != [0]:
        raise ConfigError(
            "compare --baselines is for --design shared-baseline; per-seed already trains one dense model "
            "per seed"
        )
    arms = DESIGNS[design] if arms is None else arms
    if design == "per-seed":
        return [
            run
            for seed in seeds
            for run in plan_seed(
                config_path, schedule, seed_dir(out, seed), seed, overrides, literal_overrides, kinds=arms
            )
        ]
    # the paper's design: one dense baseline (seed 0), every seed continues it; with several baselines
    # (``baselines``: their seeds) every seed continues each, so the spread includes the dense model's
    runs: list[PlannedRun] = []
    single = list(baselines) == [0]  # the paper's layout: OUT/baseline, records without a baseline seed
    for baseline_seed in baselines:
        home = out if single else out / f"b{baseline_seed}"
        tag = None if single else baseline_seed
        baseline = plan_seed(
            config_path, schedule, home, baseline_seed, overrides, literal_overrides, kinds=()
        )[0]
        baseline = dataclasses.replace(
            baseline, request=dataclasses.replace(baseline.request, exp_dir=home / BASELINE_FOLDER),
            design=design, baseline_seed=tag,
        )  # fmt: skip
        start = baseline.exp_dir / "checkpoints" / "phase1-end.pt"
        runs.append(baseline)
        for seed in seeds:
            continuations = plan_seed(
                config_path, schedule, seed_dir(home, seed), seed, overrides, literal_overrides,
                init_from=start, kinds=arms, design=design, after=baseline,
            )  # fmt: skip
            runs.extend(c if single else dataclasses.replace(c, baseline_seed=tag) for c in continuations)
    return runs  # a run's `after` may be its copy before replace: `done` reads the disk either way


def _method_settings(schedule: Schedule) -> set:
    """What an arm's settings decide in ``schedule``, whatever epochs its phases realized: each phase's
    kind and sparsity with its gradual, RigL/SET or AC/DC settings."""
    return {
        (p.kind, p.sparsity, p.ramp, p.redraw, p.acdc.element if p.acdc is not None else None)
        for p in schedule.phases
    }


def check_arm_settings(runs: list[PlannedRun], schedule: Schedule) -> None:
    """Refuse a method arm whose folder already holds a run with other settings (``rigl/every=50`` after
    ``rigl/every=100``): it would be counted done, or continued, as if it were the arm asked for."""
    for run in runs:
        arm = run.request.baseline
        if arm is None or arm_name(arm) not in ARMS:
            continue
        try:
            recorded = json.loads((run.exp_dir / "results.json").read_text())["schedule"]
            ran = Schedule.parse(recorded)
        except (OSError, ValueError, KeyError, TypeError, ScheduleError):
            continue  # nothing finished there yet
        wanted = arm_schedule(arm, schedule)
        if schedule.ends_at_convergence:  # the arm trains the epochs DSD realized: compare its settings
            same = _method_settings(ran) == _method_settings(wanted)
        else:
            same = ran.compact() == wanted.compact()
        if not same:
            raise ConfigError(
                f"--arms {arm}: {run.exp_dir} holds a run of schedule {ran.compact()}, but this arm's schedule "
                f"is {wanted.compact()}; compare arms with other settings in another --out folder (or run "
                f"the {arm_name(arm)} arm with the settings that folder was trained with)"
            )


def check_design(out: Path, design: str, baselines: list[int] | tuple[int, ...] = (0,)) -> None:
    """Refuse to mix designs in one ``--out`` folder (their folders would be continued the wrong way);
    the first compare writes ``OUT/design``. A folder without it, but with runs, is per-seed. Likewise
    one shared baseline (``OUT/baseline``) and several (``OUT/b<B>/baseline``) do not mix."""
    single = list(baselines) == [0]
    if design == "shared-baseline":
        other = any(out.glob("b*/baseline")) if single else (out / BASELINE_FOLDER).is_dir()
        if other:
            raise ConfigError(
                f"{out} holds a shared-baseline comparison with "
                f"{'several dense baselines (OUT/b<B>/)' if single else 'one dense baseline (OUT/baseline)'}; "
                f"{'--baselines ' + ','.join(map(str, baselines)) if not single else 'one baseline'} needs its "
                "own --out folder (the two would be reported as one)"
            )
    marker = out / "design"
    found = marker.read_text().strip() if marker.is_file() else None
    if found is None and any(out.glob("seed*/*/results.json")):
        found = "per-seed"  # written before designs existed
    if found is not None and found != design:
        raise ConfigError(
            f"{out} holds a {found} comparison; --design {design} needs its own --out folder "
            f"(or run it again with --design {found})"
        )
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(design + "\n")


def expected_hash(config: RunConfig) -> str:
    """The store's hash of the configuration every run of this comparison trains with."""
    return fingerprint(dataclasses.asdict(config))


def record_finished(runs: list[PlannedRun], store: Path) -> int:
    """Append a store line for each finished continuation not yet in the store; returns how many."""

    def results(record: dict) -> str:
        return json.dumps(record["phases"], sort_keys=True)

    known: dict[tuple, str] = {}  # the last line of a (config, baseline, seed, kind) counts
    if store.is_file():
        known = {record_key(r): results(r) for r in read_store(store)}
    added = 0
    for run in runs:
        if run.kind == "dense" or not run.done:
            continue
        started_from = checkpoint_run_folder(run.request.init_from)
        record = run_record(run.exp_dir, run.kind, run.seed, run.design, started_from=started_from)
        if run.baseline_seed is not None:
            record["baseline_seed"] = run.baseline_seed
        key = record_key(record)
        if known.get(key) != results(record):  # new, or trained again since it was recorded
            append_record(store, record)
            known[key] = results(record)
            added += 1
    return added


def train_in_process(run: PlannedRun) -> int:
    """Train ``run`` here; returns an exit code as ``dsd-seq train`` would (2: an error for people)."""
    try:
        outcome = run.request.run()
    except RUN_ERRORS as err:
        if os.environ.get("DSD_SEQ_DEBUG"):
            raise
        print(f"dsd-seq train: error ({type(err).__name__}): {err}", file=sys.stderr)
        return 2
    if outcome.is_main:
        print(outcome.summary())
    return outcome.exit_status


def _train_in_subprocess(run: PlannedRun) -> int:
    run.exp_dir.mkdir(parents=True, exist_ok=True)
    quiet = dataclasses.replace(run.request, overrides=(*run.request.overrides, "train.progress=false"))
    argv = [sys.executable, "-m", "dsd_seq.cli", *quiet.to_argv()]
    fd = open_no_follow(run.exp_dir / "train.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def execute(runs: list[PlannedRun], jobs: int, store: Path) -> list[str]:
    """Train what is not finished, dense phases first; returns the problems (empty when all finished)."""

    def blocked(run: PlannedRun) -> bool:
        """True while the run that ``run`` follows (its dense phase, or DSD) has not finished."""
        return run.after is not None and not run.after.done

    pending = [r for r in runs if not r.done]
    bar = tqdm(total=len(runs), initial=len(runs) - len(pending), desc="compare: runs", unit="run")
    problems: list[str] = []

    def finished(run: PlannedRun, code: int) -> None:
        if run.done:
            bar.update(1)
            record_finished([run], store)
        elif code in INTERRUPTED:
            problems.append(f"{run.name} stopped before its end (interrupted)")
        elif code:
            log = f" (log: {run.exp_dir / 'train.log'})" if jobs > 1 else ""
            problems.append(f"{run.name} failed with exit code {code}{log}")
        else:
            problems.append(f"{run.name} stopped before its end (interrupted)")

    try:
        if jobs == 1:
            for run in pending:
                if blocked(run):
                    continue  # the run it follows failed: already reported
                finished(run, train_in_process(run))
                if problems and problems[-1].endswith("(interrupted)"):
                    break
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                ready = [r for r in pending if not blocked(r)]
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
                            if run.done:
                                for follow in [r for r in waiting if not blocked(r)]:
                                    waiting.remove(follow)
                                    futures[pool.submit(_train_in_subprocess, follow)] = follow
                except KeyboardInterrupt:
                    # the running trainers got the Ctrl-C too: they save their position and exit
                    pool.shutdown(wait=True, cancel_futures=True)
                    problems.append("compare was interrupted (Ctrl-C)")
    finally:
        bar.close()
    for run in runs:
        if not run.done and blocked(run):
            what = "its dense phase" if run.after.kind == "dense" else f"the {run.after.kind} run it follows"
            problems.append(f"{run.name} not started: {what} ({run.after.exp_dir}) did not finish")
    return problems
