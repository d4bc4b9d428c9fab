"""``dsd-seq export``: a run's checkpoint -> a model package (weights without optimizer state, the model's
config and everything its inference needs, provenance and checksums).

The model family says what its inference needs: the run config's task module (e.g.
``models.speech.speech_task``) names an ``INFERENCE`` module, whose ``describe(task_args, model_state)`` returns
the settings (feature config, vocabulary, decoding, image encoder) and asset files, and whose
``from_package(settings, weights, assets, device)`` builds the usable model. dsd_seq imports neither
statically.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dsd_seq.core.schedule import Schedule
from dsd_seq.export.deployment import DeploymentError, export_graph
from dsd_seq.export.package import WEIGHTS, PackageError, serialized_bytes, write_package
from dsd_seq.export.sparse_storage import compress_state
from dsd_seq.safe_io import load_checkpoint_dict
from dsd_seq.training.provenance import environment


@dataclass
class ExportSummary:
    out: Path
    checkpoint: Path
    phase: int | None
    label: str
    weights_bytes: int
    dense_bytes: int
    storage: str
    deployment: dict[str, list[dict]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        ratio = self.weights_bytes / self.dense_bytes
        return [
            f"exported {self.checkpoint} (phase {self.phase}, {self.label}) -> {self.out}",
            f"weights: {self.storage}, {self.weights_bytes / 1e6:.3f} MB; dense file {self.dense_bytes / 1e6:.3f} MB "
            f"(ratio {ratio:.3f})",
        ] + [
            f"{fmt}: {entry['file']} ({(self.out / entry['file']).stat().st_size / 1e6:.3f} MB, dense weights), "
            f"max |difference| to the eager model {entry['max_abs_difference']:.2e}"
            for fmt, entries in self.deployment.items()
            for entry in entries
        ]


def choose_checkpoint(run_dir: Path, phase: int | None = None, best_dev: bool = False) -> tuple[Path, int]:
    """The phase-end checkpoint to export: ``phase`` (1-based), the best on the first evaluated split
    (``best_dev``), or by default the final one. Returns (path, phase)."""
    ckpts = run_dir / "checkpoints"
    ends = {
        int(m.group(1)): p for p in ckpts.glob("phase*-end.pt") if (m := re.match(r"phase(\d+)-end", p.name))
    }
    if not ends:
        raise PackageError(
            f"{run_dir}: no phase-end checkpoint in {ckpts}; train at least one phase (or pass a run folder "
            "such as exp/dsd)"
        )
    if best_dev:
        phase = _best_phase(run_dir)
    if phase is None:
        phase = max(ends)
        _refuse_unfinished(run_dir, phase)
    if phase not in ends:
        raise PackageError(f"{run_dir}: no checkpoint for phase {phase}; finished phases: {sorted(ends)}")
    return ends[phase], phase


def _refuse_unfinished(run_dir: Path, done: int) -> None:
    """The final model of a run is its last phase's: a run stopped before it (Ctrl-C, a crash, a dense
    phase trained alone) has none, and exporting its newest phase as "final" would mislabel it."""
    path = run_dir / "results.json"
    try:
        planned = len(Schedule.parse(json.loads(path.read_text(encoding="utf-8"))["schedule"]))
    except (OSError, ValueError, KeyError, TypeError):
        return  # no readable results: the phase-end files are all there is to go by
    if done < planned:
        raise PackageError(
            f"{run_dir} is unfinished: {done} of its {planned} phases are done, so it has no final model. "
            f"Continue it (dsd-seq train ... --resume), or export a finished phase by naming it: --phase {done}"
        )


def _best_phase(run_dir: Path) -> int:
    path = run_dir / "results.json"
    if not path.is_file():
        raise PackageError(f"{path} not found: --best-dev needs the run's results (finish a phase first)")
    results = json.loads(path.read_text())
    sign = 1 if results.get("higher_is_better") else -1
    metric = results["metric"]

    def score(row: dict) -> float:
        split = next(iter(row["metrics"]))  # the first evaluated split (train.eval_splits[0], dev by default)
        return sign * row["metrics"][split][metric]

    return max(results["phases"], key=score)["phase"] + 1


def inference_module(task_spec: str):
    """The module named by the task module's ``INFERENCE`` attribute."""
    module_name = task_spec.partition(":")[0]
    try:
        task_module = importlib.import_module(module_name)
    except ImportError as err:
        raise PackageError(f"task {task_spec!r} cannot be imported ({err})") from None
    name = getattr(task_module, "INFERENCE", None)
    if name is None:
        raise PackageError(
            f"task module {module_name} has no INFERENCE attribute naming its inference module; "
            "dsd-seq cannot package or run this task's models"
        )
    return name, importlib.import_module(name)


def export_run(
    run_dir: Path,
    out: Path,
    phase: int | None = None,
    best_dev: bool = False,
    compressed: bool = False,
    fp16: bool = False,
    formats: Sequence[str] = (),
) -> ExportSummary:
    """Write the package; ``formats`` ("torchscript", "onnx") add the model's inference graphs in those
    formats (see :mod:`dsd_seq.export.deployment`), listed in the manifest with checksums."""
    checkpoint, phase = choose_checkpoint(run_dir, phase, best_dev)
    state = load_checkpoint_dict(checkpoint, needs=("config",))
    config, model_state = state["config"], state["model"]
    module_name, module = inference_module(config["task"])
    settings, assets = module.describe(config["task_args"], model_state)
    row = next((r for r in state.get("results", []) if r.get("phase") == phase - 1), {})
    deployment = _deployment_files(module, settings, model_state, assets, formats)
    weights = compress_state(model_state, fp16) if compressed else dict(model_state)
    storage = ("bitmask sparse" if compressed else "dense") + (", fp16 values" if fp16 else "")
    manifest = {
        "inference": f"{module_name}:from_package",
        "settings": settings,
        "weights": {"file": WEIGHTS, "storage": storage, "exact": not fp16},
        "provenance": _provenance(run_dir, checkpoint, phase, row, state),
    }
    if deployment:
        manifest["deployment"] = {fmt: [e for e, _ in files] for fmt, files in deployment.items()}
        assets = {**assets, **{e["file"]: data for files in deployment.values() for e, data in files}}
    write_package(out, manifest, {"model": weights}, assets)
    return ExportSummary(
        out=out,
        checkpoint=checkpoint,
        phase=phase,
        label=row.get("label", "?"),
        weights_bytes=(out / WEIGHTS).stat().st_size,
        dense_bytes=serialized_bytes({"model": dict(model_state)}),
        storage=storage,
        deployment=manifest.get("deployment", {}),
    )


def _deployment_files(module, settings: dict, model_state: dict, assets: dict, formats: Sequence[str]):
    """format -> [(manifest entry, file bytes)] for each inference graph the model family names."""
    if not formats:
        return {}
    model = module.from_package(settings, dict(model_state), assets, "cpu")
    if not hasattr(model, "deployment_graphs"):
        raise DeploymentError(
            f"{type(model).__name__} names no inference graphs to export; only the package can be written"
        )
    graphs = model.deployment_graphs()
    return {fmt: [export_graph(graph, fmt)[::-1] for graph in graphs] for fmt in dict.fromkeys(formats)}


def _provenance(run_dir: Path, checkpoint: Path, phase: int, row: dict, state: dict) -> dict:
    exporting = environment()
    return {
        "run_dir": str(run_dir.resolve()),
        "checkpoint": checkpoint.name,
        "phase": phase,
        "phase_label": row.get("label"),
        "schedule": state.get("schedule"),
        "measured_sparsity": row.get("measured_sparsity"),
        "metrics": row.get("metrics"),  # the phase's scores on its evaluated splits (dev, test)
        "task": state["config"]["task"],
        # the versions and commit of the exporting code
        "dsd_seq_version": exporting["versions"]["dsd_seq"],
        "torch_version": exporting["versions"]["torch"],
        "python_version": exporting["versions"]["python"],
        "git_commit": exporting["git_commit"],
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # what trained the phase (versions, git commit, uncommitted changes); None for runs trained before
        # results rows named it
        "trained_with": row.get("environment"),
    }
