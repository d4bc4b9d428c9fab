"""The ``dsd-seq`` command: train a schedule (or a baseline), compare over seeds, write reports.

Each subcommand parses its options and calls the library: ``train`` and ``plan-run`` a
:class:`dsd_seq.training.run.TrainRequest`, ``compare`` :mod:`dsd_seq.experiments.compare`. The task
(model family and data) is named in the config as ``module:factory`` and imported by that name, so the
engine itself depends on no model or data package. Nothing imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dsd_seq.core.comparators import ARMS, arm_name, arm_schedule
from dsd_seq.core.schedule import Schedule
from dsd_seq.experiments.compare import (
    CONTINUATIONS,
    DESIGNS,
    KINDS,
    CompareError,
    check_arm_settings,
    check_design,
    execute,
    expected_hash,
    parse_arms,
    parse_baselines,
    parse_seeds,
    plan_runs,
    plan_seed,
    record_finished,
)
from dsd_seq.experiments.report import build_table, load_results, to_markdown, write_report
from dsd_seq.experiments.run_store import (
    STORE_NAME,
    append_record,
    check_store,
    checkpoint_run_folder,
    run_record,
)
from dsd_seq.experiments.score import MODES, score_files
from dsd_seq.training import launch
from dsd_seq.training.config import ConfigError, load_config
from dsd_seq.training.run import BASELINES, RENAMED_BASELINES, RUN_ERRORS, RunOutcome, TrainRequest

# Errors meant for people: printed as one message (set DSD_SEQ_DEBUG=1 for the traceback): a run's errors
# (config, schedule, data, checkpoints), and the report, figure and comparison ones.
USER_ERRORS = (*RUN_ERRORS, CompareError)


def _train(args: argparse.Namespace) -> int:
    if args.store:
        check_store(args.store)  # before hours of training, not after them
    _relaunch_under_torchrun(args)
    outcome = train_request(args).run()
    _print_outcome(outcome)
    if outcome.is_main and outcome.finished and args.store:
        started_from = checkpoint_run_folder(args.init_from)
        append_record(
            args.store,
            run_record(outcome.exp_dir, arm_name(args.baseline or "dsd"), started_from=started_from),
        )
    return outcome.exit_status  # 130/143: a signal stopped it before its end (a recipe must stop too)


def train_request(args: argparse.Namespace) -> TrainRequest:
    """The run ``dsd-seq train`` options ask for (the inverse of :meth:`TrainRequest.to_argv`)."""
    overrides = list(args.set or [])
    if args.schedule is not None:
        if not args.schedule.strip():
            raise ConfigError(
                "--schedule is empty; give a compact schedule such as D10:1e-3,S10@0.5:1e-3,D10:1e-4, "
                "or leave the option out to use the config's"
            )
        overrides.append(f"schedule={args.schedule}")
    return TrainRequest.from_args(args, overrides, args.set_str or [])


def _plan_run(args: argparse.Namespace) -> int:
    _relaunch_under_torchrun(args)
    if args.kind in RENAMED_BASELINES:
        raise ConfigError(f"plan-run {args.kind}: {RENAMED_BASELINES[args.kind]}")
    overrides, literal = list(args.set or []), list(args.set_str or [])
    config = load_config(args.config, overrides, literal)
    schedule = Schedule.from_config(config.schedule)
    init_from = args.init_from
    if init_from is not None and not init_from.is_file():
        raise ConfigError(
            f"--init-from {init_from} does not exist: give the phase1-end.pt of a dense run of this config "
            "(e.g. an earlier run's exp/dsd/checkpoints/phase1-end.pt)"
        )
    runs = plan_seed(
        args.config,
        schedule,
        args.exp,
        config.train.seed,
        overrides,
        literal,
        init_from,
        tuple(CONTINUATIONS),
    )
    if args.kind == "dense" and init_from is not None:
        print(f"dense phase: given by --init-from {init_from}; nothing to train")
        return 0
    run = next(r for r in runs if r.kind == args.kind)
    first = run.after
    if first is not None and not first.done:
        needs = (
            f"starts from the dense phase's end, {run.request.init_from}"
            if first.kind == "dense"
            else f"trains the epochs the DSD run realized ({run.request.epochs_from})"
        )
        raise CompareError(
            f"the {args.kind} run {needs}, but {first.exp_dir} has not finished its "
            f"{'dense phase' if first.kind == 'dense' else 'schedule'}: run `dsd-seq plan-run {first.kind}` first"
        )
    outcome = run.request.run()
    _print_outcome(outcome)
    return outcome.exit_status


def _relaunch_under_torchrun(args: argparse.Namespace) -> None:
    """With more than one process asked for, replace this process by torchrun running the same command."""
    if launch.needs_torchrun(args.nproc_per_node, args.nnodes):
        launch.relaunch(
            args.argv, args.nproc_per_node, args.nnodes, args.node_rank, args.master_addr, args.master_port
        )


def _print_outcome(outcome: RunOutcome) -> None:
    """The run's results table (once it has a finished phase) and where it stands; rank 0 only."""
    if not outcome.is_main:
        return
    if outcome.position.phase and (outcome.exp_dir / "results.json").is_file():
        print(to_markdown(build_table(load_results(outcome.exp_dir))))
    print(outcome.summary())


def _report(args: argparse.Namespace) -> int:
    if args.exp_dir is not None:
        from dsd_seq.experiments.experiment_report import (
            write_experiment_report,  # matplotlib: only when drawing
        )

        path = write_experiment_report(args.exp_dir, layer=args.layer, paper=args.paper)
        print(path.read_text())
        print(f"report: {path}")
        if (args.exp_dir / "results.md").is_file():
            print(f"results table: {args.exp_dir / 'results.md'}")
        return 0
    if args.exp is None or args.out is None:
        raise ConfigError("dsd-seq report: give EXP_DIR, or --exp and --out (with an optional --baseline)")
    md, js = write_report(args.exp, args.baseline, args.out)
    print(md.read_text())
    print(f"results table: {md} (and {js})")
    return 0


def _score(args: argparse.Namespace) -> int:
    if args.captions:
        return _score_captions(args)
    if args.ref is None:
        raise ConfigError("dsd-seq score: --ref is needed (or --captions with --refs for captions)")
    result = score_files(args.ref, args.hyp, args.mode, "char" if args.cer else "word")
    print("\n".join(result.kaldi_lines()))
    return 0


def _score_captions(args: argparse.Namespace) -> int:
    from dsd_seq.experiments.caption_files import score_caption_file

    if args.refs is None:
        raise ConfigError(
            "dsd-seq score --captions: --refs (a Karpathy split file, dataset_*.json) is needed"
        )
    split = None if args.split == "all" else args.split
    print("\n".join(score_caption_file(args.hyp, args.refs, split, args.meteor)))
    return 0


def _export(args: argparse.Namespace) -> int:
    from dsd_seq.export.commands import export_command

    return export_command(args)


def _transcribe(args: argparse.Namespace) -> int:
    from dsd_seq.export.commands import transcribe_command

    return transcribe_command(args)


def _caption(args: argparse.Namespace) -> int:
    from dsd_seq.export.commands import caption_command

    return caption_command(args)


def _compare(args: argparse.Namespace) -> int:
    from dsd_seq.experiments.experiment_report import (
        write_comparison_report,  # scipy, matplotlib: only when reporting
    )

    out = args.out
    overrides, literal = list(args.set or []), list(args.set_str or [])
    wanted = None
    if args.config is not None:
        config = load_config(args.config, overrides, literal)
        wanted = expected_hash(config)
    if args.report_only:
        md, _ = write_comparison_report(out, wanted, layer=args.layer, metric=args.metric)
        print(md.read_text())
        print(f"report: {md}")
        return 0
    if args.config is None:
        raise ConfigError("dsd-seq compare: --config is needed to train (or pass --report-only)")
    if args.jobs < 1:
        raise ConfigError("dsd-seq compare: --jobs must be at least 1")
    seeds, baselines = parse_seeds(args.seeds), parse_baselines(args.baselines)
    schedule = Schedule.from_config(config.schedule)
    arms = parse_arms(args.arms, args.design, schedule)
    runs = plan_runs(args.config, schedule, seeds, out, overrides, literal, args.design, baselines, arms)
    check_design(out, args.design, baselines)
    check_arm_settings(runs, schedule)
    for arm in arms:
        label, to_schedule = BASELINES[CONTINUATIONS[arm_name(arm)]]
        s = arm_schedule(arm, schedule) if arm_name(arm) in ARMS else to_schedule(schedule)
        realized = arm != "dsd" and schedule.ends_at_convergence
        epochs = "the epochs each seed's DSD run realizes" if realized else f"{s.total_epochs} epochs"
        print(f"{label:9s} {s.compact()} ({epochs})")
    named = f"seeds {args.seeds}" if not str(args.seeds).isdigit() else f"{len(seeds)} seeds"
    if args.design == "per-seed":
        plan = f"{named} x (1 dense phase + {len(arms)} continuations)"
    else:  # the paper's Appendix A, with one or several dense baselines
        dense = f"1 dense baseline (seed {baselines[0]})" if len(baselines) == 1 else (
            f"{len(baselines)} dense baselines (seeds {', '.join(map(str, baselines))})"
        )  # fmt: skip
        what = "DSD + fine-tuning, the LLR schedule" if arms == ("dsd", "llr") else " + ".join(arms)
        plan = f"{dense}, then {named} x ({what}) from each"
    print(f"design {args.design}: {plan} -> {out}; store {out / STORE_NAME}")
    problems = execute(runs, args.jobs, out / STORE_NAME)
    record_finished(runs, out / STORE_NAME)
    if problems:
        raise CompareError(
            "; ".join(problems) + ". Finished runs are kept: run the same command again to continue "
            "(it skips finished runs and resumes interrupted ones)"
        )
    md, _ = write_comparison_report(out, wanted, layer=args.layer)
    if args.metric:
        print(md.read_text())
        md, _ = write_comparison_report(out, wanted, layer=args.layer, metric=args.metric)
    print(md.read_text())
    print(f"report: {md}")
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
    explained = [
        ("DSD", schedule),
        ("LLR baseline", schedule.llr()),
        ("Final-LR control", schedule.final_lr_control()),
    ]
    if schedule[0].kind == "dense" and schedule.has_sparse_phase:  # compare --arms: the methods' arms
        explained += [(f"{label} arm ({arm})", to_arm(schedule)) for arm, (label, to_arm) in ARMS.items()]
    for label, s in explained:
        most = " at most" if s.ends_at_convergence else ""
        print(f"{label}: {s.compact()} ({s.total_epochs} epochs{most})")
        for i, phase in enumerate(s):
            print(
                f"  {i + 1}. {s.label(i):8s} {phase.epochs:4d} epochs  lr {phase.lr:g}  sparsity {phase.sparsity:g}"
            )
            if phase.until is not None:
                print(f"     ends {phase.until.describe(phase.epochs)}; hands on its last model")
            described = s.describe(i)
            if described is not None:
                print(f"     {described}")
    print(
        "(the LLR baseline continued from a shared dense baseline is the paper's fine-tuning control, Appendix A;"
        " the arms are what `compare --arms` trains for each method, docs/methods/)"
    )
    if schedule.ends_at_convergence:
        print(
            "Phases end at convergence: the LLR and final-LR baselines train the epochs the DSD run "
            "realized (compare and plan-run read them from its results.json; train: --epochs-from); "
            "--baseline llr-converge drops the learning rate upon convergence instead."
        )
    return 0


def _average(args: argparse.Namespace) -> int:
    from dsd_seq.training.average_run import average_run

    how, count = ("last", args.last) if args.last is not None else ("best", args.best)
    if count < 1:
        raise ConfigError(f"dsd-seq average: --{how} must be at least 1")
    path, epochs = average_run(args.run, args.phase, how, count, args.out)
    print(f"averaged epochs {', '.join(map(str, epochs))} of phase {args.phase} -> {path}")
    return 0


def _baseline_option(text: str) -> str:
    """``--baseline``: a baseline's name, or a method's arm with its settings (``rigl/every=50``)."""
    if text in ("llr", "final_lr", "llr-converge", *RENAMED_BASELINES) or arm_name(text) in ARMS:
        return text
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from llr, final_lr, llr-converge, {', '.join(ARMS)}; an arm may "
        "take settings: rigl/every=50)"
    )


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsd-seq", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="run a DSD schedule (or its baseline) on a task")
    train.add_argument("--config", type=Path, required=True, help="YAML run config")
    train.add_argument("--exp-dir", type=Path, required=True, help="folder for checkpoints, logs, results")
    train.add_argument(
        "--schedule", help="compact schedule overriding the config, e.g. D10:1e-3,S10@0.5:1e-3,D10:1e-4"
    )
    train.add_argument(
        "--baseline",
        type=_baseline_option,
        metavar="{llr,final_lr,llr-converge,gmp,rigl,set,acdc}",
        help="run a baseline of the schedule instead: llr (same epochs and learning rates, no pruning; from "
        "a dense phase-1 checkpoint, the paper's fine-tuning control) or final_lr (dense phase, then dense "
        "training at the final learning rate for the same epochs); for phases that end at convergence, "
        "llr-converge drops the learning rate upon convergence instead. finetune was renamed final_lr. "
        "gmp, rigl, set, acdc: the methods DSD is weighed against, at its epochs and learning rates, "
        "settings after a slash (rigl/every=50/drop=0.5; docs/methods/)",
    )
    train.add_argument(
        "--epochs-from",
        type=Path,
        help="a DSD run's results.json: the llr/final_lr baseline of a schedule whose phases end at "
        "convergence trains the epochs that run realized (equal epochs)",
    )
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
    train.add_argument("--store", type=Path, help="append this run's record to a run store (JSON lines)")
    _add_launch_options(train)
    train.set_defaults(func=_train)

    report = sub.add_parser(
        "report", help="write the report of a finished experiment (tables and figures) or one results table"
    )
    report.add_argument(
        "exp_dir",
        nargs="?",
        type=Path,
        help="a compare --out folder, a recipe's exp folder (dsd/, llr/) or a run folder: writes "
        "EXP_DIR/report.md and EXP_DIR/figures/",
    )
    report.add_argument("--exp", type=Path, help="(table only) the DSD experiment folder")
    report.add_argument("--baseline", type=Path, help="(table only) the LLR baseline experiment folder")
    report.add_argument("--out", type=Path, help="(table only) output prefix: writes OUT.md and OUT.json")
    report.add_argument(
        "--layer", help="name glob of the layer for Figure 2 (default: largest recurrent matrix)"
    )
    report.add_argument(
        "--paper",
        choices=["table5", "table7", "table9"],
        help="(EXP_DIR of a recipe) add the paper's Table 5 (NeuralTalk), 7 (DeepSpeech 1) or 9 (DeepSpeech 2) "
        "beside this run's phases",
    )
    report.set_defaults(func=_report)

    score = sub.add_parser(
        "score", help="WER (or CER) of a hypothesis file against a reference file, as Kaldi's compute-wer"
    )
    score.add_argument("--ref", type=Path, help="reference text: '<utt-id> words...' lines")
    score.add_argument("--hyp", type=Path, required=True, help="hypothesis text, the same format")
    score.add_argument("--cer", action="store_true", help="score characters (spaces included), not words")
    score.add_argument(
        "--mode",
        choices=MODES,
        default="strict",
        help="strict: the same ids in both files; present: only ids in HYP; all: a missing hyp is empty",
    )
    score.add_argument(
        "--captions",
        "--bleu",
        action="store_true",
        help="BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of '<image> <caption>' lines (dsd-seq caption) vs "
        "--refs (--bleu: the older name)",
    )
    score.add_argument("--refs", type=Path, help="with --captions: Karpathy split file (dataset_*.json)")
    score.add_argument(
        "--split", default="test", help="with --captions: test (default), dev/val, train or all"
    )
    score.add_argument(
        "--meteor",
        choices=["auto", "on", "off"],
        default="auto",
        help="with --captions: METEOR where Java runs (auto, default; skipped with the reason otherwise), "
        "required (on) or not (off)",
    )
    score.set_defaults(func=_score)
    add_inference_parsers(sub)
    average = sub.add_parser(
        "average",
        help="average a phase's last or best N epochs' weights into one checkpoint (icefall's --avg)",
    )
    average.add_argument(
        "run", type=Path, help="the run folder (trained with train.average, which keeps epochs)"
    )
    average.add_argument("--phase", type=int, required=True, help="the phase, counted from 1")
    rule = average.add_mutually_exclusive_group(required=True)
    rule.add_argument("--last", type=int, help="the phase's last N epochs")
    rule.add_argument("--best", type=int, help="the phase's N epochs with the best monitored dev value")
    average.add_argument(
        "--out", type=Path, help="file to write (default RUN/checkpoints/phaseN-avg-lastK.pt)"
    )
    average.set_defaults(func=_average)
    compare = sub.add_parser(
        "compare", help="run a schedule and its equal-epoch baselines over seeds; t-test report"
    )
    compare.add_argument(
        "--design",
        choices=list(DESIGNS),
        default="per-seed",
        help="per-seed (default): each seed trains its own dense phase, continued as DSD, LLR and the "
        "final-LR control; shared-baseline (the paper's Appendix A): one dense baseline (seed 0), continued "
        "by every seed as DSD and as fine-tuning (the LLR schedule), variance from retraining only",
    )
    compare.add_argument("--config", type=Path, help="YAML run config (needed unless --report-only)")
    compare.add_argument(
        "--seeds",
        default="5",
        help="a count N (seeds 0 .. N-1; default 5), a range (100-104) or a list (3,7,100-102)",
    )
    compare.add_argument(
        "--baselines",
        default="1",
        help="shared-baseline: K dense baselines from seeds 0 .. K-1 (default 1: seed 0, the paper's), or "
        "their seeds as a range or list (100-102); every seed continues each, and DSD against fine-tuning "
        "is tested paired by baseline",
    )
    compare.add_argument(
        "--arms",
        help="the continuations each seed trains, comma-separated with dsd among them: dsd, llr, final_lr "
        "and the methods gmp, rigl, set, acdc (docs/methods/); default dsd,llr,final_lr (per-seed) or "
        "dsd,llr (shared-baseline)",
    )
    compare.add_argument("--jobs", type=int, default=1, help="runs at once, each its own process (default 1)")
    compare.add_argument(
        "--out", type=Path, required=True, help="folder for the runs, runs.jsonl and the report"
    )
    compare.add_argument(
        "--report-only", action="store_true", help="rebuild the report from OUT/runs.jsonl without training"
    )
    compare.add_argument(
        "--layer", help="name glob of the layer for Figure 2 (default: largest recurrent matrix)"
    )
    compare.add_argument(
        "--metric",
        help="build the report on another metric the runs recorded (e.g. cider_d, rouge_l; default: the "
        "task's main metric); writes OUT/report-METRIC.md beside report.md",
    )
    compare.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, as for train")
    compare.add_argument(
        "--set-str", action="append", metavar="KEY=TEXT", help="verbatim override, as for train"
    )
    compare.set_defaults(func=_compare)

    plan_run = sub.add_parser(
        "plan-run",
        help="train one run of compare's plan for the config's own seed, in a recipe's layout",
        description="Train one run of the plan `dsd-seq compare` follows for each seed, for the config's own "
        "train.seed, in EXP: dense (the dense phase, into EXP/dsd), dsd (DSD's later phases, EXP/dsd), llr "
        "or final_lr (the baseline, into EXP/llr or EXP/final_lr, started from "
        "EXP/dsd/checkpoints/phase1-end.pt). Each resumes where it stopped; the recipes' training stages "
        "are `plan-run dense`, `plan-run dsd` and `plan-run llr`. With --init-from the dense run is that "
        "file: `plan-run dense` trains nothing and the others start from it.",
    )
    plan_run.add_argument("kind", choices=[*KINDS, *RENAMED_BASELINES], help="which run of the plan")
    plan_run.add_argument(
        "--init-from",
        type=Path,
        help="a dense phase1-end.pt of this config (e.g. a trained model from an earlier run) replacing "
        "the dense run",
    )
    plan_run.add_argument("--config", type=Path, required=True, help="YAML run config")
    plan_run.add_argument("--exp", type=Path, required=True, help="the experiment folder (dsd/, llr/ ...)")
    plan_run.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, as for train")
    plan_run.add_argument(
        "--set-str", action="append", metavar="KEY=TEXT", help="verbatim override, as for train"
    )
    _add_launch_options(plan_run)
    plan_run.set_defaults(func=_plan_run)

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


def add_inference_parsers(sub) -> None:
    """``export``, ``transcribe`` and ``caption``: using a trained model (see dsd_seq.export)."""
    from dsd_seq.export import inference_options  # torch only

    export = sub.add_parser("export", help="write a self-contained model package from a run's checkpoint")
    export.add_argument("run_dir", type=Path, help="the run folder (e.g. exp/dsd) with checkpoints/")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--phase", type=int, help="the end of this phase (1-based; e.g. a sparse phase)")
    which.add_argument("--final", action="store_true", help="the end of the last finished phase (default)")
    which.add_argument(
        "--best-dev", action="store_true", help="the phase with the best first-eval-split score"
    )
    export.add_argument("--out", type=Path, required=True, help="the package folder to write")
    export.add_argument(
        "--compressed", action="store_true", help="store pruned matrices as nonzeros + bitmask (exact)"
    )
    export.add_argument("--fp16", action="store_true", help="store values in fp16 (half the size, not exact)")
    export.add_argument(
        "--format",
        action="append",
        choices=["torchscript", "onnx"],
        help="also write the inference graph(s) as <graph>.ts / <graph>.onnx (repeatable; onnx needs dsd-seq[onnx])",
    )
    export.set_defaults(func=_export)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("model", help="a model package (dsd-seq export) or a training checkpoint")
    common.add_argument("inputs", nargs="+", help="files, folders (searched recursively) or a wav.scp")
    common.add_argument("--jsonl", action="store_true", help="JSON lines instead of '<name> <text>' lines")
    common.add_argument(
        "--device", default="cpu", type=inference_options.device, help="cpu (default), cuda, cuda:1 ..."
    )
    transcribe = sub.add_parser(
        "transcribe", parents=[common], help="transcribe audio files (any format soundfile reads)"
    )
    transcribe.add_argument("--decoding", choices=["greedy", "beam", "lm"], help="default: the model's")
    transcribe.add_argument(
        "--beam-size",
        type=inference_options.beam,
        help=f"beam width for --decoding beam/lm (1..{inference_options.MAX_BEAM})",
    )
    transcribe.add_argument("--lm", help="ARPA or KenLM file for --decoding lm")
    transcribe.add_argument(
        "--batch-size", type=inference_options.batch_size, default=16, help="files decoded together"
    )
    transcribe.add_argument(
        "--chunk-seconds",
        type=inference_options.chunk_seconds,
        help="decode longer files in pieces of this many seconds (default 30; smaller needs less memory)",
    )
    transcribe.add_argument("--quiet", action="store_true", help="no progress bar")
    transcribe.set_defaults(func=_transcribe)
    caption = sub.add_parser("caption", parents=[common], help="caption image files (formats Pillow reads)")
    caption.add_argument(
        "--beam", type=inference_options.beam, help="beam size (1: greedy; default: the model's)"
    )
    caption.add_argument("--encoder-weights", help="torchvision encoders: their weights file, if moved")
    caption.set_defaults(func=_caption)


def _add_launch_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("several processes (torchrun; see dsd_seq.training.launch)")
    group.add_argument(
        "--nproc-per-node", type=int, default=1, help="processes on this node: one per GPU (gloo on a CPU)"
    )
    group.add_argument("--nnodes", type=int, default=1, help="number of nodes taking part")
    group.add_argument("--node-rank", type=int, default=0, help="this node's index, 0 .. nnodes-1")
    group.add_argument("--master-addr", default="", help="address of node 0 (needed with --nnodes > 1)")
    group.add_argument("--master-port", type=int, default=29500, help="port node 0 listens on")


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
