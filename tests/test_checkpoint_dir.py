"""The checkpoint folder: names, hard links, rotation, newest-first listing that counts only exact names,
the newest readable checkpoint (damaged ones renamed *.corrupt), stale temporaries removed."""

import os

import pytest
import torch

from dsd_seq.safe_io import CheckpointError, load_safely
from dsd_seq.training.checkpoint_dir import CheckpointDir


def _state(step: int) -> dict:
    # the keys resume needs (dsd_seq.training.checkpoint.RESUME_KEYS), as the trainer writes them
    keys = {
        "model": {},
        "format": 1,
        "optimizer": {},
        "dsd": {},
        "position": {},
        "schedule": [],
        "results": [],
    }
    return {**keys, "step": step, "weights": torch.full((3,), float(step))}


def test_names_links_and_rotation(tmp_path):
    folder = CheckpointDir(tmp_path / "checkpoints", keep=2)
    for step in (4, 8, 12):
        folder.write(_state(step), step, phase_end=1 if step == 4 else None)
    names = sorted(p.name for p in folder.folder.iterdir())
    assert names == ["last.pt", "phase1-end.pt", "step-000000008.pt", "step-000000012.pt"]
    assert os.path.samefile(folder.last, folder.step_path(12))  # a hard link, not a copy
    assert load_safely(folder.phase_end_path(1))["step"] == 4  # outlives its rotated-out step file
    assert [p.name for p in folder.newest_first()] == [
        "step-000000012.pt", "step-000000008.pt", "last.pt", "phase1-end.pt",
    ]  # fmt: skip


def test_only_exact_names_count_as_checkpoints(tmp_path):
    folder = CheckpointDir(tmp_path, keep=3)
    folder.write(_state(7), 7, phase_end=2)
    folder.write(_state(1_000_000_000), 1_000_000_000, phase_end=10)  # more than nine digits
    for name in ("step-000000010 copy 2.pt", "step-10.pt", "step-000000099.pt.bak", "phase3-end copy.pt",
                 "old-step-000000050.pt", "last (1).pt"):  # fmt: skip
        (tmp_path / name).write_bytes(b"someone's copy")
    (tmp_path / "step-000000099.pt").mkdir()  # a folder with a checkpoint's name is not one
    assert [p.name for p in folder.newest_first()] == [
        "step-1000000000.pt", "step-000000007.pt", "last.pt", "phase10-end.pt", "phase2-end.pt",
    ]  # fmt: skip
    folder.write(_state(8), 8)  # rotation (keep 3) leaves the look-alikes alone
    assert (tmp_path / "step-000000010 copy 2.pt").read_bytes() == b"someone's copy"
    assert [p.name for p in folder.steps()] == [
        "step-1000000000.pt",
        "step-000000008.pt",
        "step-000000007.pt",
    ]


def test_newest_valid_skips_and_renames_damaged_checkpoints(tmp_path):
    folder = CheckpointDir(tmp_path, keep=3)
    for step in (1, 2, 3):
        folder.write(_state(step), step)
    newest = folder.step_path(3)
    newest.write_bytes(newest.read_bytes()[:-20])  # torn by a crash
    path, state, skipped = folder.newest_valid()
    assert path == folder.step_path(2) and state["step"] == 2
    assert [p.name for p, _ in skipped] == ["step-000000003.pt"] and "truncated" in skipped[0][1]
    assert (tmp_path / "step-000000003.pt.corrupt").is_file() and not newest.exists()
    assert [p.name for p in folder.newest_first()] == ["step-000000002.pt", "step-000000001.pt", "last.pt"]


def test_a_rank_that_does_not_rename_only_reads(tmp_path):
    folder = CheckpointDir(tmp_path, keep=3)
    folder.write(_state(1), 1)
    folder.write(_state(2), 2)
    folder.step_path(2).write_bytes(b"garbage")
    path, _, skipped = folder.newest_valid(rename_damaged=False)
    assert path == folder.step_path(1) and len(skipped) == 1 and folder.step_path(2).is_file()


def test_all_damaged_is_an_error_and_an_empty_folder_is_none(tmp_path):
    folder = CheckpointDir(tmp_path / "checkpoints", keep=3)
    assert folder.newest_valid() is None and folder.newest_first() == []
    folder.write(_state(1), 1)
    folder.step_path(1).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"no readable checkpoint; all 2 were damaged.*--init-from"):
        folder.newest_valid()


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    folder = CheckpointDir(tmp_path, keep=3)
    folder.write(_state(1), 1)
    (tmp_path / ".step-000000002.pt.tmp").write_bytes(b"half")
    (tmp_path / ".last.pt.link.tmp").write_bytes(b"half")
    folder.remove_stale_temporaries()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step-000000001.pt"]
