"""The README's library example runs as written and does what it says."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_library_example_runs_and_prunes_then_redenses():
    (example,) = _python_blocks()
    done = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert re.search(r"D5:0\.01\s+sparsity 0\.00", lines[0])
    assert re.search(r"S5@0\.5:0\.01\s+sparsity 0\.50", lines[1])
    redense = float(lines[2].split()[-1])
    assert redense < 0.2  # pruned weights trained again


def test_quick_start_names_the_recipe_and_test_command():
    text = README.read_text()
    quick = (
        text.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    )
    assert len(quick) == 3
    assert quick[1] == "egs/synth_speech/run.sh" and quick[2] == "pytest"
    assert (README.parent / quick[1]).stat().st_mode & 0o111
