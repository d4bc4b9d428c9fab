"""The README's library example runs as written and does what it says; its links and those of docs/*.md lead
somewhere, and the modules and scripts they tell a reader to run exist."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


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


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_anchor(h) for h in re.findall(r"(?m)^#+ (.*)$", page.read_text())}


def test_readme_links_every_docs_page_and_every_link_resolves():
    readme = README.read_text()
    unlinked = [p.name for p in DOCS[1:] if f"](docs/{p.name})" not in readme]
    assert not unlinked, f"README.md links none of docs/{unlinked}"
    broken = []
    for page in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
                broken.append(f"{page.relative_to(ROOT)}: ({target})")
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


def test_modules_and_scripts_the_docs_name_exist():
    """A page that says `python -m data_prep.x` or `python egs/.../y.py` names a file of this repository."""
    missing = []
    for page in DOCS:
        text = page.read_text()
        for module in re.findall(r"python3? -m ([\w.]+)", text):
            path = ROOT.joinpath(*module.split("."))
            if module != "venv" and not (
                path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
            ):
                missing.append(f"{page.relative_to(ROOT)}: python -m {module}")
        for script in re.findall(r"(?:python3?|bash) ((?:egs|benchmarks)/[\w./-]*\w)", text):
            if not (ROOT / script).is_file():
                missing.append(f"{page.relative_to(ROOT)}: {script}")
    assert not missing, "the docs name what is not there:\n" + "\n".join(missing)
