"""The ``dsd-seq`` command: train a schedule (or its LLR baseline), write the results table.

The task (model family and data) is named in the config as ``module:factory``; this module imports it
by that name, so the engine itself depends on no model or data package.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

import torch

from dsd_seq import distributed, launch
from dsd_seq.checkpoint import CheckpointError
from dsd_seq.config import ConfigError, load_config, to_yaml
from dsd_seq.report import build_table, load_results, to_markdown, write_report
from dsd_seq.schedule import Schedule, ScheduleError
from dsd_seq.selection import SelectionError
from dsd_seq.trainer import Trainer, TrainingError

# Errors meant for people: printed as one message (set DSD_SEQ_DEBUG=1 for the traceback). Tasks raise
# ValueError/OSError subclasses for bad data, so those are included.
USER_ERRORS = (
    ConfigError,
    ScheduleError,
    SelectionError,
    CheckpointError,
    TrainingError,
    distributed.RankMismatchError,
    ValueError,
    OSError,
)


def build_task(spec: str, task_args: dict):
    """Import ``module:factory`` and call it with the config's ``task_args``."""
    module_name, _, factory_name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"task {spec!r} cannot be imported ({err}); expected 'module:function'") from None
    return factory(**task_args)


def _train(args: argparse.Namespace) -> int:
    if launch.needs_torchrun(args.nproc_per_node, args.nnodes):
        launch.relaunch(
            args.argv, args.nproc_per_node, args.nnodes, args.node_rank, args.master_addr, args.master_port
        )
    overrides = list(args.set or [])
    if args.schedule:
        overrides.append(f"schedule={args.schedule}")
    config = load_config(args.config, overrides, args.set_str)
    schedule = Schedule.from_config(config.schedule)
    if args.baseline == "llr":
        schedule = schedule.llr()
    elif not schedule.has_sparse_phase and not args.dense_only:
        raise ConfigError(
            f"{args.config}: schedule {schedule.compact()} has no sparse phase, so it is not DSD; add one "
            "(e.g. S10@0.5:1e-3, sparsity in (0, 1)), or pass --dense-only if a dense-only run is intended "
            "(--baseline llr runs the LLR baseline of a DSD schedule)"
        )
    exp_dir = Path(args.exp_dir)
    torch.manual_seed(config.train.seed)
    task = build_task(config.task, config.task_args)
    try:
        trainer = Trainer(
            task, schedule, config, exp_dir, run_label="LLR" if args.baseline == "llr" else "DSD"
        )
        # a resumed run keeps the config it started with; under torchrun rank 0 writes it
        if trainer.is_main and not trainer.checkpoints():
            exp_dir.mkdir(parents=True, exist_ok=True)
            (exp_dir / "config.yaml").write_text(to_yaml(config) + f"# schedule run: {schedule.compact()}\n")
        trainer.run(
            resume=args.resume,
            init_from=args.init_from,
            stop_after_steps=args.stop_after_steps,
            until_phase=args.until_phase,
        )
    finally:
        distributed.destroy()
    if not trainer.is_main:
        return 0
    pos = trainer.position
    if trainer.results:
        print(to_markdown(build_table(load_results(exp_dir))))
    if trainer.finished:
        print(f"results: {exp_dir / 'results.json'}")
    elif pos.epoch == 0 and pos.step == 0:
        print(f"{pos.phase} of {len(schedule)} phases done; the next continues with --resume")
    else:
        print(
            f"stopped in phase {pos.phase + 1}, epoch {pos.epoch + 1}, after step {pos.step}; continue with "
            f"--resume (checkpoint {trainer.ckpt_dir / 'last.pt'})"
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    md, js = write_report(args.exp, args.baseline, args.out)
    print(md.read_text())
    print(f"results table: {md} (and {js})")
    return 0


def _schedule(args: argparse.Namespace) -> int:
    if (args.schedule is None) == (args.config is None):
        raise ConfigError("dsd-seq schedule: give a compact schedule or --config, not both")
    schedule = (
        Schedule.parse(args.schedule)
        if args.schedule
        else Schedule.from_config(load_config(args.config, args.set, args.set_str).schedule)
    )
    if args.count:
        print(len(schedule))
        return 0
    for label, s in (("DSD", schedule), ("LLR baseline", schedule.llr())):
        print(f"{label}: {s.compact()} ({s.total_epochs} epochs)")
        for i, phase in enumerate(s):
            print(
                f"  {i + 1}. {s.label(i):8s} {phase.epochs:4d} epochs  lr {phase.lr:g}  sparsity {phase.sparsity:g}"
            )
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsd-seq", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="run a DSD schedule (or its baseline) on a task")
    train.add_argument("--config", type=Path, required=True, help="YAML run config")
    train.add_argument("--exp-dir", type=Path, required=True, help="folder for checkpoints, logs, results")
    train.add_argument(
        "--schedule", help="compact schedule overriding the config, e.g. D10:1e-3,S10@0.5:1e-3,D10:1e-4"
    )
    train.add_argument("--baseline", choices=["llr"], help="run the LLR baseline of the schedule instead")
    train.add_argument(
        "--dense-only", action="store_true", help="allow a schedule without a sparse phase (no pruning)"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest readable checkpoint in EXP_DIR/checkpoints",
    )
    train.add_argument(
        "--init-from", type=Path, help="start after the completed phases of this phase-end checkpoint"
    )
    train.add_argument(
        "--until-phase", type=int, help="stop after this many phases (continue later with --resume)"
    )
    train.add_argument("--stop-after-steps", type=int, help=argparse.SUPPRESS)
    train.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config field (YAML value)"
    )
    train.add_argument(
        "--set-str", action="append", metavar="KEY=TEXT", help="set a config field to TEXT verbatim (paths)"
    )
    group = train.add_argument_group("several processes (torchrun; see dsd_seq.launch)")
    group.add_argument(
        "--nproc-per-node", type=int, default=1, help="processes on this node: one per GPU (gloo on a CPU)"
    )
    group.add_argument("--nnodes", type=int, default=1, help="number of nodes taking part")
    group.add_argument("--node-rank", type=int, default=0, help="this node's index, 0 .. nnodes-1")
    group.add_argument("--master-addr", default="", help="address of node 0 (needed with --nnodes > 1)")
    group.add_argument("--master-port", type=int, default=29500, help="port node 0 listens on")
    train.set_defaults(func=_train)

    report = sub.add_parser("report", help="write the per-phase results table (markdown and JSON)")
    report.add_argument("--exp", type=Path, required=True, help="the DSD experiment folder")
    report.add_argument("--baseline", type=Path, help="the LLR baseline experiment folder")
    report.add_argument("--out", type=Path, required=True, help="output prefix: writes OUT.md and OUT.json")
    report.set_defaults(func=_report)

    schedule = sub.add_parser("schedule", help="explain a compact schedule and its LLR baseline")
    schedule.add_argument("schedule", nargs="?", help="compact schedule, e.g. D10:1e-3,S10@0.5:1e-3,D10:1e-4")
    schedule.add_argument("--config", type=Path, help="read the schedule from this run config instead")
    schedule.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, as for train")
    schedule.add_argument(
        "--set-str", action="append", metavar="KEY=TEXT", help="verbatim override, as for train"
    )
    schedule.add_argument("--count", action="store_true", help="print only the number of phases")
    schedule.set_defaults(func=_schedule)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = make_parser().parse_args(argv)
    args.argv = argv  # relaunched under torchrun as given
    try:
        return args.func(args)
    except USER_ERRORS as err:
        if os.environ.get("DSD_SEQ_DEBUG"):
            raise
        print(f"dsd-seq {args.command}: error ({type(err).__name__}): {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
