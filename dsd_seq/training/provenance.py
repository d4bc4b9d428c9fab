"""The code a run trains with: package versions and the git commit of the dsd-seq source.

Read once when a trainer starts, so each phase row of ``results.json`` names the code that trained it,
including whether the checkout had uncommitted changes then. Read later (when a comparison records the
finished run) it would describe whatever the checkout holds by that time.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

#: The dsd_seq package's folder (not read from ``dsd_seq`` itself, which imports the layers that import this).
SOURCE = Path(__file__).resolve().parents[1]


def environment() -> dict[str, Any]:
    """Versions and the git commit of the dsd-seq source that runs (None outside a git checkout)."""
    commit = _git(SOURCE, "rev-parse", "HEAD")
    dirty = _git(SOURCE, "status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "versions": {
            "dsd_seq": _installed_version("dsd-seq"),
            "torch": str(torch.__version__),  # a TorchVersion, which checkpoints may not hold
            "python": platform.python_version(),
        },
        "git_commit": commit,
        "git_dirty": bool(dirty) if commit else None,
    }


def run_environment(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One environment for a run from its phase rows: the last phase's versions and commit, dirty if any
    phase was trained from a modified checkout, and ``git_commits`` when phases ran different commits
    (a run resumed after a checkout changed). ``unrecorded_phases`` lists the phases whose rows name no
    code (trained before rows named it, then resumed). None when no row names it."""
    envs = [row["environment"] for row in rows if isinstance(row.get("environment"), dict)]
    if not envs:
        return None
    unrecorded = [
        row.get("phase", i) for i, row in enumerate(rows) if not isinstance(row.get("environment"), dict)
    ]
    last = envs[-1]
    flags = [env.get("git_dirty") for env in envs]
    summary = {
        "versions": last.get("versions"),
        "git_commit": last.get("git_commit"),
        "git_dirty": None if all(flag is None for flag in flags) else any(bool(flag) for flag in flags),
    }
    commits = list(dict.fromkeys(env["git_commit"] for env in envs if env.get("git_commit")))
    if len(commits) > 1:
        summary["git_commits"] = commits
    if unrecorded:
        summary["unrecorded_phases"] = unrecorded
    return summary


def _installed_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "not installed"


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
