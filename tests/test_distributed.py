"""Two gloo processes on the CPU train the toy task with DDP (DESIGN.md invariant 6): masks and weights
are identical on both ranks, pruned weights are zero on both, only rank 0 writes checkpoints, a run
stopped mid-phase and resumed by both ranks ends bit-identical to an uninterrupted one, and
``dsd-seq train --nproc-per-node 2`` runs through torchrun."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dsd_seq.training.checkpoint_dir as checkpoint_dir_module
from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import load_safely
from dsd_seq.training import distributed
from dsd_seq.training.config import load_config
from dsd_seq.training.launch import relaunch, strip_launch_options, torchrun_command
from dsd_seq.training.metrics_log import read_metrics
from dsd_seq.training.trainer import Trainer
from tests.gloo_ranks import become_rank, save_rank_result, spawn_ranks
from tests.toy_task import ToyTask

ROOT = Path(__file__).resolve().parents[1]
# 64 items, batch 4: 16 batches an epoch, 8 per rank; 2 epochs a phase -> 16 steps per phase on each rank
SCHEDULE = "D2:0.01,S2@0.5:0.01,D2:0.001"
OPTIONS = [
    "task=tests.toy_task:build_toy_task",
    f"schedule={SCHEDULE}",
    "train.optimizer=adam",
    "train.grad_clip=1.0",
    "train.num_threads=1",
    "train.checkpoint_every_steps=5",
    "train.progress=false",
    "train.tensorboard=false",
    "train.eval_splits=[test]",
]


def _trainer(exp: Path, precision: str, device: str = "cpu") -> Trainer:
    torch.manual_seed(0)
    config = load_config(None, [*OPTIONS, f"train.precision={precision}", f"train.device={device}"])
    return Trainer(ToyTask(batch_size=4), Schedule.parse(SCHEDULE), config, exp)


def _snapshot(trainer: Trainer, masks: dict) -> dict:
    return {
        "params": {n: p.detach().clone() for n, p in trainer.model.named_parameters()},
        "masks": masks,
        "results": trainer.results,
    }


def _worker(rank: int, world: int, port: int, tmp: Path, precision: str, device: str = "cpu") -> None:
    """One rank: an uninterrupted run (a) and a run stopped and resumed (b); saves what it ended with."""
    become_rank(rank, world, port)
    writes = []
    real_save = checkpoint_dir_module.save_checkpoint
    checkpoint_dir_module.save_checkpoint = lambda state, path: (
        writes.append(str(path)),
        real_save(state, path),
    )
    out = {}
    # a: uninterrupted. The sparse phase's masks are read at its end (re-dense lifts them afterwards).
    full = _trainer(tmp / "a", precision, device)
    full.run(until_phase=2)
    sparse_masks = {n: m.clone() for n, m in full.dsd.masks.masks.items()}
    full.run(resume=True)
    out["a"] = _snapshot(full, sparse_masks)
    # b: stopped after 21 steps (mid sparse phase), then resumed by a new trainer on every rank
    _trainer(tmp / "b", precision, device).run(stop_after_steps=21)
    resumed = _trainer(tmp / "b", precision, device)
    resumed.run(resume=True, until_phase=2)
    out["b_resumed_from"] = str(resumed.resumed_from)
    sparse_masks = {n: m.clone() for n, m in resumed.dsd.masks.masks.items()}
    resumed.run(resume=True)
    out["b"] = _snapshot(resumed, sparse_masks)
    out["checkpoint_writes"] = writes
    save_rank_result(out, tmp, rank)
    distributed.destroy()


def run_two_ranks(tmp: Path, precision: str = "fp32", device: str = "cpu") -> list[dict]:
    """Both ranks' results (tests/test_gpu.py runs the same on two GPUs with NCCL)."""
    return spawn_ranks(_worker, tmp, precision, device)


def assert_ranks_identical(r0: dict, r1: dict) -> None:
    for run in ("a", "b"):
        assert r0[run]["masks"].keys() == r1[run]["masks"].keys()
        for name, mask in r0[run]["masks"].items():
            assert torch.equal(mask, r1[run]["masks"][name]), name
            assert 0 < int(mask.sum()) < mask.numel(), name
        for name, value in r0[run]["params"].items():
            assert torch.equal(value, r1[run]["params"][name]), name
        # rank 0's evaluation, received by rank 1 (only the phases' timings are each rank's own)
        untimed = [
            [{k: v for k, v in row.items() if k != "seconds"} for row in r[run]["results"]] for r in (r0, r1)
        ]
        assert untimed[0] == untimed[1] and len(untimed[0]) == 3


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    return tmp, run_two_ranks(tmp)


def test_masks_and_weights_are_identical_on_both_ranks(two_ranks):
    assert_ranks_identical(*two_ranks[1])


def test_pruned_weights_are_zero_on_both_ranks_in_the_sparse_phase(two_ranks):
    tmp, _ = two_ranks
    state = load_safely(tmp / "a" / "checkpoints" / "phase2-end.pt")
    masks = state["dsd"]["masks"]
    assert masks
    for name, mask in masks.items():
        assert torch.all(state["model"][name][~mask] == 0), name
    # both ranks hold those weights: they are identical (above), and the checkpoint holds rank 0's
    rank1 = torch.load(tmp / "rank1.pt", weights_only=True)["a"]["masks"]
    for name, mask in masks.items():
        assert torch.equal(rank1[name], mask), name


def test_only_rank_0_writes_checkpoints_and_metrics(two_ranks):
    tmp, (r0, r1) = two_ranks
    assert r0["checkpoint_writes"] and r1["checkpoint_writes"] == []
    steps = [e["step"] for e in read_metrics(tmp / "a" / "metrics.jsonl") if e["event"] == "train"]
    assert steps == list(range(48)), "one line per step: rank 1 logged nothing"
    state = load_safely(tmp / "a" / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2


def test_run_resumed_under_two_ranks_ends_bit_identical(two_ranks):
    _, (r0, r1) = two_ranks
    assert "step-000000021.pt" in r0["b_resumed_from"] and r0["b_resumed_from"] == r1["b_resumed_from"]
    for name, value in r0["a"]["params"].items():
        assert torch.equal(value, r0["b"]["params"][name]), name
    for name, mask in r0["a"]["masks"].items():
        assert torch.equal(mask, r0["b"]["masks"][name]), name


def test_resume_under_another_process_count_is_refused(two_ranks):
    tmp, _ = two_ranks
    with pytest.raises(Exception, match="2 process"):
        _trainer(tmp / "b", "fp32").run(resume=True)


def test_dsd_seq_train_with_two_processes_relaunches_through_torchrun(tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text(
        "\n".join(o.replace("=", ": ", 1) for o in OPTIONS if not o.startswith("train."))
        + "\ntrain: {optimizer: adam, num_threads: 1, progress: false, tensorboard: false, eval_splits: [test],"
        + " device: cpu}\n"
        + "task_args: {batch_size: 4}\n"
    )
    command = [sys.executable, "-m", "dsd_seq.cli", "train", "--config", str(config), "--exp-dir"]
    command += [str(tmp_path / "exp"), "--nproc-per-node", "2"]  # relaunches itself through torchrun
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.count("results:") == 1, "only rank 0 prints the table"
    state = load_safely(tmp_path / "exp" / "checkpoints" / "phase3-end.pt")
    assert state["world_size"] == 2 and state["position"]["global_step"] == 48
    assert (tmp_path / "exp" / "config.yaml").is_file()


def test_launch_command_for_one_and_several_nodes():
    argv = [
        "train",
        "--config",
        "c.yaml",
        "--nproc-per-node",
        "4",
        "--nnodes=2",
        "--node-rank",
        "1",
        "--resume",
    ]
    assert strip_launch_options(argv) == ["train", "--config", "c.yaml", "--resume"]
    single = torchrun_command(["train"], 4, 1, 0, "", 29500)
    assert "--standalone" in single and "--master-addr" not in single
    multi = torchrun_command(["train"], 4, 2, 1, "10.0.0.1", 29400)
    assert (
        multi[multi.index("--node-rank") + 1] == "1" and multi[multi.index("--master-addr") + 1] == "10.0.0.1"
    )
    assert multi[-3:] == ["-m", "dsd_seq.cli", "train"]
    with pytest.raises(ValueError, match="--master-addr"):
        relaunch(argv, 4, 2, 1, "", 29500)


def test_more_processes_than_gpus_is_refused_before_touching_a_device(monkeypatch):
    """torchrun with --nproc-per-node above the GPU count must say so, not die in CUDA ("invalid ordinal")."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="1 GPU.*train.device=cpu"):
        distributed.init_from_env(torch.device("cuda"))
