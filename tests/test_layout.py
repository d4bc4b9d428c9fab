"""The import layers of docs/architecture.md, read from the source itself.

Every .py file under dsd_seq/, models/ and data_prep/ is parsed with ``ast``; every import counts, at the top
of a module or inside a function, ``import x`` and ``from x import y``, relative ones resolved. A broken rule
is reported as ``file:line: module imports target``, so the message says which line to change.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dsd_seq", "models", "data_prep")


@dataclass(frozen=True)
class Import:
    path: str  # the importing file, relative to the repository root
    line: int
    source: str  # the importing module, e.g. dsd_seq.training.trainer
    target: str  # the imported module, resolved; for `from x import y`, x.y when that is a module

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


PROJECT_MODULES = {_module_name(p) for p in _project_files()}


def _base_of_relative(source: str, is_package: bool, level: int, module: str | None) -> str:
    """`from ..x import y` in module a.b.c names a.x: level 1 is the module's own package."""
    package = source.split(".") if is_package else source.split(".")[:-1]
    if level > len(package):
        raise ValueError(f"relative import beyond the top package in {source}")
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(path: Path) -> list[Import]:
    source = _module_name(path)
    relative_path = str(path.relative_to(ROOT))
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=relative_path)):
        if isinstance(node, ast.Import):
            found += [Import(relative_path, node.lineno, source, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _base_of_relative(source, path.name == "__init__.py", node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in PROJECT_MODULES else base
                found.append(Import(relative_path, node.lineno, source, target))
    return found


ALL_IMPORTS = [found for path in _project_files() for found in imports_of(path)]


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _is_project(module: str) -> bool:
    return _in(module, *PACKAGES)


def _is_stdlib_or_torch(module: str) -> bool:
    top = module.split(".")[0]
    return top in sys.stdlib_module_names or top == "torch"


# Each rule, keyed by what it says: (whose imports it reads, which targets break it). The root package
# `dsd_seq` only re-exports dsd_seq.core and dsd_seq.export's load_model (both below training), so importing
# it counts as importing those.
RULES = {
    "dsd_seq imports neither models nor data_prep": (
        lambda source: _in(source, "dsd_seq"),
        lambda target: _in(target, "models", "data_prep"),
    ),
    "data_prep imports of the project only dsd_seq.safe_io": (
        lambda source: _in(source, "data_prep"),
        lambda target: _in(target, "models") or (_in(target, "dsd_seq") and target != "dsd_seq.safe_io"),
    ),
    "dsd_seq.safe_io is a leaf: it imports nothing of the project": (
        lambda source: source == "dsd_seq.safe_io",
        _is_project,
    ),
    "dsd_seq.core imports only dsd_seq.core, torch and the standard library": (
        lambda source: _in(source, "dsd_seq.core"),
        lambda target: (
            not _in(target, "dsd_seq.core") and (_is_project(target) or not _is_stdlib_or_torch(target))
        ),
    ),
    "dsd_seq.training imports of the project only core, training and safe_io": (
        lambda source: _in(source, "dsd_seq.training"),
        lambda target: (
            _is_project(target)
            and target != "dsd_seq"
            and not _in(target, "dsd_seq.core", "dsd_seq.training", "dsd_seq.safe_io")
        ),
    ),
    "dsd_seq.experiments imports of the project only core, training, experiments and safe_io": (
        lambda source: _in(source, "dsd_seq.experiments"),
        lambda target: (
            _is_project(target)
            and target != "dsd_seq"
            and not _in(target, "dsd_seq.core", "dsd_seq.training", "dsd_seq.experiments", "dsd_seq.safe_io")
        ),
    ),
    "dsd_seq.export imports of the project only core, training, export and safe_io": (
        lambda source: _in(source, "dsd_seq.export"),
        lambda target: (
            _is_project(target)
            and target != "dsd_seq"
            and not _in(target, "dsd_seq.core", "dsd_seq.training", "dsd_seq.export", "dsd_seq.safe_io")
        ),
    ),
    "dsd_seq.integrations imports of the project only core": (
        lambda source: _in(source, "dsd_seq.integrations"),
        lambda target: _is_project(target) and not _in(target, "dsd_seq.core", "dsd_seq.integrations"),
    ),
    "only dsd_seq.integrations imports dsd_seq.integrations (a user's code does)": (
        lambda source: not _in(source, "dsd_seq.integrations"),
        lambda target: _in(target, "dsd_seq.integrations"),
    ),
    "nothing imports dsd_seq.cli": (
        lambda source: True,
        lambda target: _in(target, "dsd_seq.cli"),
    ),
}


def _breaking(rule: str, imports: list[Import]) -> list[Import]:
    reads, breaks = RULES[rule]
    return [found for found in imports if reads(found.source) and breaks(found.target)]


def test_the_packages_are_found_and_their_imports_read():
    assert {"dsd_seq.core.masks", "dsd_seq.training.trainer", "models.speech_task", "data_prep.features"} <= (
        PROJECT_MODULES
    )
    edges = {(i.source, i.target) for i in ALL_IMPORTS}
    assert ("dsd_seq.core.dsd", "dsd_seq.core.masks") in edges  # absolute `from x import y`
    assert ("models.speech_task", "data_prep.features") in edges


@pytest.mark.parametrize("rule", list(RULES))
def test_layer_rule(rule):
    if offenders := _breaking(rule, ALL_IMPORTS):
        pytest.fail(f"{rule}, but:\n" + "\n".join(map(str, offenders)))


# For each rule, an import it must refuse and one it must let through.
BROKEN_AND_KEPT = {
    "dsd_seq imports neither models nor data_prep": (
        ("dsd_seq.training.trainer", "models.ctc"),
        ("dsd_seq.training.trainer", "dsd_seq.core.masks"),
    ),
    "data_prep imports of the project only dsd_seq.safe_io": (
        ("data_prep.features", "dsd_seq.training.config"),
        ("data_prep.features", "dsd_seq.safe_io"),
    ),
    "dsd_seq.safe_io is a leaf: it imports nothing of the project": (
        ("dsd_seq.safe_io", "dsd_seq.core"),
        ("dsd_seq.safe_io", "torch"),
    ),
    "dsd_seq.core imports only dsd_seq.core, torch and the standard library": (
        ("dsd_seq.core.masks", "numpy"),
        ("dsd_seq.core.masks", "torch.nn"),
    ),
    "dsd_seq.training imports of the project only core, training and safe_io": (
        ("dsd_seq.training.trainer", "dsd_seq.experiments.report"),
        ("dsd_seq.training.trainer", "dsd_seq"),
    ),
    "dsd_seq.experiments imports of the project only core, training, experiments and safe_io": (
        ("dsd_seq.experiments.compare", "models.speech_task"),
        ("dsd_seq.experiments.compare", "dsd_seq.training.trainer"),
    ),
    "dsd_seq.export imports of the project only core, training, export and safe_io": (
        ("dsd_seq.export.loading", "dsd_seq.experiments.report"),
        ("dsd_seq.export.loading", "dsd_seq.export.package"),
    ),
    "dsd_seq.integrations imports of the project only core": (
        ("dsd_seq.integrations.lightning", "dsd_seq.training.trainer"),
        ("dsd_seq.integrations.lightning", "dsd_seq.core.masked_optimizer"),
    ),
    "only dsd_seq.integrations imports dsd_seq.integrations (a user's code does)": (
        ("dsd_seq.cli", "dsd_seq.integrations.lightning"),
        ("dsd_seq.integrations.huggingface", "dsd_seq.integrations.lightning"),
    ),
    "nothing imports dsd_seq.cli": (
        ("models.speech_task", "dsd_seq.cli"),
        ("dsd_seq.cli", "dsd_seq.experiments.compare"),
    ),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_refuses_an_import_that_breaks_it(rule):
    broken, kept = (Import("made_up.py", 1, source, target) for source, target in BROKEN_AND_KEPT[rule])
    assert _breaking(rule, [broken, kept]) == [broken]


def _project_module_of(target: str) -> str | None:
    """The longest project module a target names (`import models.ctc.x` -> models.ctc)."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in PROJECT_MODULES:
            return ".".join(parts[:end])
    return None


def find_import_cycle(imports: list[Import]) -> list[Import]:
    """One circle of imports between project modules, as the list of its edges; [] when there is none."""
    edges: dict[str, list[Import]] = {}
    for found in imports:
        target = _project_module_of(found.target)
        if target and target != found.source:
            edges.setdefault(found.source, []).append(Import(found.path, found.line, found.source, target))
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[Import] = []

    def visit(module: str) -> list[Import]:
        state[module] = "open"
        for edge in edges.get(module, []):
            if state.get(edge.target) == "open":
                start = next(k for k, e in enumerate(path + [edge]) if e.source == edge.target)
                return (path + [edge])[start:]
            if edge.target not in state:
                path.append(edge)
                if cycle := visit(edge.target):
                    return cycle
                path.pop()
        state[module] = "done"
        return []

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


def test_no_import_circle_between_modules():
    if cycle := find_import_cycle(ALL_IMPORTS):
        pytest.fail("modules import each other in a circle:\n" + "\n".join(map(str, cycle)))


def test_the_cycle_finder_finds_a_circle_through_three_modules():
    made_up = [
        Import("a.py", 1, "dsd_seq.core.masks", "dsd_seq.core.schedule"),
        Import("b.py", 2, "dsd_seq.core.schedule", "dsd_seq.core.dsd"),
        Import("c.py", 3, "dsd_seq.core.dsd", "dsd_seq.core.masks"),
        Import("d.py", 4, "dsd_seq.cli", "dsd_seq.core.masks"),
    ]
    cycle = find_import_cycle(made_up)
    assert sorted(e.path for e in cycle) == ["a.py", "b.py", "c.py"]
    assert find_import_cycle(made_up[1:]) == []


def test_relative_imports_are_resolved():
    assert _base_of_relative("dsd_seq.core.masks", False, 1, "schedule") == "dsd_seq.core.schedule"
    assert _base_of_relative("dsd_seq.core", True, 1, "dsd") == "dsd_seq.core.dsd"
    assert _base_of_relative("dsd_seq.training.trainer", False, 2, "core.masks") == "dsd_seq.core.masks"
    assert _base_of_relative("dsd_seq.training.trainer", False, 2, None) == "dsd_seq"


@pytest.mark.parametrize("package", ["models", "data_prep", "dsd_seq/training"])
def test_package_docstring_lists_every_module_of_the_package(package):
    """The package docstring is the folder's table of contents: one ``module`` a line, nothing stale."""
    docstring = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text())) or ""
    listed = set(re.findall(r"^    ``(\w+)``", docstring, flags=re.M))
    present = {p.stem for p in (ROOT / package).glob("*.py") if p.name != "__init__.py"}
    assert listed == present, (
        f"{package}/__init__.py's docstring does not list {sorted(present - listed)} "
        f"and lists {sorted(listed - present)}, which are not there"
    )


def test_no_file_cites_notes_outside_the_repository():
    """Code, docs and tests carry their facts themselves: notes outside the repository are not shipped."""
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    outside = ("PROTOTYPE" + "-FINDINGS", ".." + "/shared/")  # split so this file does not match itself
    offenders = []
    for name in listed.stdout.splitlines():
        path = ROOT / name
        if name.startswith(".ci/") or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # images and other binary files
        for number, line in enumerate(text.splitlines(), 1):
            offenders += [f"{name}:{number}: mentions {word}" for word in outside if word in line]
    if offenders:
        pytest.fail(
            "files cite notes outside the repository; carry the fact itself instead:\n" + "\n".join(offenders)
        )
