"""One training run, typed: :func:`train_run` builds the task and the trainer, writes ``config.yaml`` and
trains; :class:`TrainRequest` is the same call named by a config file and overrides, run in this process
or spelled as the ``dsd-seq train`` command line that runs it in another.

The run's schedule is the config's DSD schedule, or one of its equal-epoch baselines (``baseline``):
``llr`` (same epochs and learning rates, no pruning; from a shared dense baseline also the paper's
fine-tuning control) or ``final_lr`` (dense phase, then dense training at the final learning rate: a
control of this toolkit), see :meth:`dsd_seq.core.schedule.Schedule.llr`. When the schedule's phases end
at convergence, these two train the epochs the DSD run realized (``epochs_from``: its results.json), so
the comparison stays at equal epochs; ``llr-converge`` is the paper's other wording of LLR for such
schedules: drop the learning rate upon convergence and continue (each phase ends at its own plateau).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from dsd_seq.core.comparators import ARMS, arm_name, arm_schedule
from dsd_seq.core.schedule import Schedule, ScheduleError
from dsd_seq.core.selection import SelectionError
from dsd_seq.safe_io import CheckpointError
from dsd_seq.training import distributed
from dsd_seq.training.config import ConfigError, RunConfig, load_config, to_yaml
from dsd_seq.training.results import realized_epochs
from dsd_seq.training.run_lock import RunLockedError, lock_for_all_ranks
from dsd_seq.training.stop_request import exit_status
from dsd_seq.training.task import build_task
from dsd_seq.training.trainer import Position, Trainer, TrainingError

#: The baselines of a DSD schedule: how results tables name the run, and its schedule.
BASELINES = {
    None: ("DSD", lambda s: s),
    "llr": ("LLR", Schedule.llr),
    "final_lr": ("Final-LR", Schedule.final_lr_control),
    "llr-converge": ("LLR (to convergence)", Schedule.llr),
    # the methods DSD is weighed against (gmp, rigl, set, acdc; ``rigl/every=50``: with settings)
    **{name: (label, lambda s, name=name: arm_schedule(name, s)) for name, (label, _) in ARMS.items()},
}
#: Former baseline names, refused with what to use now (the name claimed the paper's control, which it
#: is not: the paper fine-tunes with DSD's own learning rates, i.e. ``llr`` from a shared baseline).
RENAMED_BASELINES = {
    "finetune": "'finetune' was renamed 'final_lr' (the dense phase, then dense training at the schedule's "
    "final learning rate: a control of this toolkit, not the paper's). The paper's fine-tuning control "
    "(Appendix A) is the LLR schedule continued from a shared dense baseline: 'llr', or "
    "`dsd-seq compare --design shared-baseline`",
}
#: the baselines that must train the DSD run's realized epochs when its phases end at convergence
EQUAL_EPOCHS = ("llr", "final_lr", *ARMS)
#: Errors a run reports to people (bad config, schedule, data or checkpoint): shown as one message.
#: Tasks raise ValueError/OSError subclasses for bad data, so those are included.
RUN_ERRORS = (
    ConfigError,
    ScheduleError,
    SelectionError,
    CheckpointError,
    TrainingError,
    RunLockedError,
    distributed.RankMismatchError,
    ValueError,
    OSError,
)


@dataclass(frozen=True)
class RunOutcome:
    """Where a :func:`train_run` call left its run."""

    exp_dir: Path
    schedule: Schedule  # the schedule that ran (a baseline's, for a baseline)
    position: Position  # the next step; ``position.phase`` phases are done
    is_main: bool  # rank 0 (under torchrun the other ranks print nothing)
    last_checkpoint: Path
    stopped_by: int | None = None  # the signal that stopped the run before its end (SIGINT, SIGTERM)
    interrupted: bool = False  # the run stopped on a signal (here or on another rank) before its end

    @property
    def exit_status(self) -> int:
        """0 when the run did what was asked; 130/143 when a signal stopped it first (stop_request)."""
        return exit_status(self.stopped_by) if self.interrupted and not self.finished else 0

    @property
    def finished(self) -> bool:
        return self.position.phase >= len(self.schedule)

    def summary(self) -> str:
        """One line: where the results are, or how to continue."""
        pos = self.position
        if self.finished:
            return f"results: {self.exp_dir / 'results.json'}"
        if pos.epoch == 0 and pos.step == 0:
            return f"{pos.phase} of {len(self.schedule)} phases done; the next continues with --resume"
        return (
            f"stopped in phase {pos.phase + 1}, epoch {pos.epoch + 1}, after step {pos.step}; continue with "
            f"--resume (checkpoint {self.last_checkpoint})"
        )


def train_run(
    config: RunConfig,
    schedule: Schedule,
    exp_dir: str | Path,
    *,
    baseline: str | None = None,
    resume: bool = False,
    init_from: str | Path | None = None,
    until_phase: int | None = None,
    stop_after_steps: int | None = None,
    dense_only: bool = False,
    label: str | None = None,
    epochs_from: str | Path | None = None,
) -> RunOutcome:
    """Train ``schedule`` (or its ``baseline``: "llr", "final_lr") on the config's task in ``exp_dir``.

    A new run writes ``exp_dir/config.yaml``; a resumed one keeps the config it started with. A schedule
    without a sparse phase is refused unless ``dense_only``. ``label`` names the run in results tables
    (default: "DSD", "LLR", "Final-LR"). For ``resume``, ``init_from``, ``until_phase`` and
    ``stop_after_steps`` see :meth:`Trainer.run`. ``epochs_from`` (a DSD run's results.json) fixes the
    epochs of phases that end at convergence to those that run realized, as the llr and final_lr
    baselines of such a schedule require."""
    if baseline in RENAMED_BASELINES:
        raise ConfigError(f"baseline {baseline!r}: {RENAMED_BASELINES[baseline]}")
    arm = baseline if baseline is not None and arm_name(baseline) in ARMS else None
    if arm is not None:  # a method's arm, maybe with settings: rigl/every=50
        baseline = arm_name(arm)
    if baseline not in BASELINES:
        raise ConfigError(
            f"baseline {baseline!r}; accepted: {', '.join(b for b in BASELINES if b)} (or none for DSD itself)"
        )
    schedule = _with_realized_epochs(schedule, baseline, epochs_from)
    default_label, to_baseline = BASELINES[baseline]
    if arm is not None:
        to_baseline = lambda s: arm_schedule(arm, s)  # noqa: E731
    if baseline is None and not schedule.has_sparse_phase and not dense_only:
        raise ConfigError(
            f"schedule {schedule.compact()} has no sparse phase, so it is not DSD; add one "
            "(e.g. S10@0.5:1e-3, sparsity in (0, 1)), or pass --dense-only if a dense-only run is intended "
            "(--baseline llr runs the LLR baseline of a DSD schedule)"
        )
    schedule, exp_dir = to_baseline(schedule), Path(exp_dir)
    if until_phase is not None and not 1 <= until_phase <= len(schedule):
        raise ConfigError(
            f"--until-phase {until_phase}: accepted: 1 .. {len(schedule)} (the phases of {schedule.compact()})"
        )
    torch.manual_seed(config.train.seed)
    task = build_task(config.task, config.task_args)
    try:
        trainer = Trainer(task, schedule, config, exp_dir, run_label=label or default_label)
        if trainer.is_main:
            print(parameter_count_line(trainer.model, trainer.dsd.params.values()), flush=True)
        # one run per folder, for the whole run: under torchrun rank 0 holds the lock for all ranks
        with lock_for_all_ranks(exp_dir, trainer.is_main):
            # a resumed run keeps the config it started with; under torchrun rank 0 writes it
            if trainer.is_main and not trainer.checkpoint_dir.newest_first():
                (exp_dir / "config.yaml").write_text(
                    to_yaml(config) + f"# schedule run: {schedule.compact()}\n"
                )
            trainer.run(
                resume=resume, init_from=init_from, stop_after_steps=stop_after_steps, until_phase=until_phase
            )
    finally:
        distributed.destroy()
    return RunOutcome(
        exp_dir, schedule, trainer.position, trainer.is_main, trainer.checkpoint_dir.last,
        stopped_by=trainer.stop.signal, interrupted=trainer.interrupted,
    )  # fmt: skip


def parameter_count_line(model: torch.nn.Module, prunable) -> str:
    """ "model: N parameters (M prunable by DSD)", printed at the start of every run so a recipe's log says
    how large the model is (e.g. Table 8's ~67M DeepSpeech 2). Tied weights count once."""
    total = sum(p.numel() for p in model.parameters())
    pruned = sum({id(p): p.numel() for p in prunable}.values())
    return f"model: {total:,} parameters ({pruned:,} prunable by DSD)"


def _with_realized_epochs(
    schedule: Schedule, baseline: str | None, epochs_from: str | Path | None
) -> Schedule:
    """The schedule with the realized epochs of ``epochs_from``, or unchanged; refuses an equal-epoch
    baseline of a converging schedule without them (its epochs would be the maxima, not DSD's)."""
    if epochs_from is None:
        if schedule.ends_at_convergence and baseline in EQUAL_EPOCHS:
            raise ConfigError(
                f"schedule {schedule.compact()} has phases that end at convergence, so the {baseline} baseline "
                "must train the epochs the DSD run realized: pass --epochs-from DSD_EXP_DIR/results.json "
                "(compare and plan-run do), or --baseline llr-converge to let each phase end at its own plateau"
            )
        return schedule
    if baseline not in EQUAL_EPOCHS:
        raise ConfigError(
            f"--epochs-from is for the {' and '.join(EQUAL_EPOCHS)} baselines, not {baseline or 'DSD'}"
        )
    epochs = realized_epochs(Path(epochs_from))
    if len(epochs) != len(schedule):
        raise ConfigError(
            f"{epochs_from}: the DSD run finished {len(epochs)} of the {len(schedule)} phases of "
            f"{schedule.compact()}; its baselines start once it has finished (resume it first)"
        )
    return schedule.realized(epochs)


#: The TrainRequest fields given as a repeatable ``dsd-seq train`` option, one ``--option=value`` each.
_REPEATED_OPTIONS = {"overrides": "--set", "literal_overrides": "--set-str"}


@dataclass(frozen=True)
class TrainRequest:
    """A ``dsd-seq train`` call: the config file, its overrides (``--set``, then ``--set-str``) and the
    run's options. :meth:`run` trains in this process, :meth:`to_argv` is the command line doing the same."""

    config: Path
    exp_dir: Path
    overrides: tuple[str, ...] = ()
    literal_overrides: tuple[str, ...] = ()
    baseline: str | None = None
    resume: bool = False
    init_from: Path | None = None
    until_phase: int | None = None
    stop_after_steps: int | None = None
    dense_only: bool = False
    epochs_from: Path | None = None  # a DSD run's results.json: train the epochs it realized

    @classmethod
    def from_args(cls, args: Any, overrides: Sequence[str], literal_overrides: Sequence[str]) -> TrainRequest:
        """The request of parsed ``dsd-seq train`` options (``args``: an attribute per field, as argparse
        names them) with the given overrides; the inverse of :meth:`to_argv`."""
        options = {f.name: getattr(args, f.name) for f in fields(cls) if f.name not in _REPEATED_OPTIONS}
        return cls(**options, overrides=tuple(overrides), literal_overrides=tuple(literal_overrides))

    def load_config(self) -> RunConfig:
        return load_config(self.config, list(self.overrides), list(self.literal_overrides))

    def run(self) -> RunOutcome:
        config = self.load_config()
        given = ("config", "exp_dir", *_REPEATED_OPTIONS)
        options = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in given}
        return train_run(config, Schedule.from_config(config.schedule), self.exp_dir, **options)

    def to_argv(self) -> list[str]:
        """The ``dsd-seq train ...`` arguments (after ``python -m dsd_seq.cli``) of this request: a field
        ``init_from`` is the option ``--init-from``, a true flag stands alone, an unset option is left out."""
        argv = ["train"]
        for f in fields(self):
            value, option = getattr(self, f.name), "--" + f.name.replace("_", "-")
            if f.name in _REPEATED_OPTIONS:
                argv += [f"{_REPEATED_OPTIONS[f.name]}={v}" for v in value]
            elif value is True:
                argv.append(option)
            elif value is not None and value is not False and value != "":
                argv += [option, str(value)]
        return argv
