"""The import layers of docs/architecture.md, read from the source itself.

Every .py file under dsd_seq/, models/ and data_prep/ is parsed with ``ast``; every import counts, at the top
of a module or inside a function, ``import x`` and ``from x import y``, relative ones resolved. A broken rule
is reported as ``file:line: module imports target``, so the message says which line to change. Between the
packages the rules are ``RULES``; inside ``data_prep`` and ``models`` their subpackages are layers
(``INNER_LAYERS``), each importing only itself and the layers below it.
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
    assert {
        "dsd_seq.core.masks",
        "dsd_seq.training.trainer",
        "models.speech.speech_task",
        "data_prep.features.extraction",
    } <= (PROJECT_MODULES)
    edges = {(i.source, i.target) for i in ALL_IMPORTS}
    assert ("dsd_seq.core.dsd", "dsd_seq.core.masks") in edges  # absolute `from x import y`
    assert ("models.speech.speech_task", "data_prep.features.extraction") in edges


@pytest.mark.parametrize("rule", list(RULES))
def test_layer_rule(rule):
    if offenders := _breaking(rule, ALL_IMPORTS):
        pytest.fail(f"{rule}, but:\n" + "\n".join(map(str, offenders)))


# For each rule, an import it must refuse and one it must let through.
BROKEN_AND_KEPT = {
    "dsd_seq imports neither models nor data_prep": (
        ("dsd_seq.training.trainer", "models.speech.ctc"),
        ("dsd_seq.training.trainer", "dsd_seq.core.masks"),
    ),
    "data_prep imports of the project only dsd_seq.safe_io": (
        ("data_prep.features.extraction", "dsd_seq.training.config"),
        ("data_prep.features.extraction", "dsd_seq.safe_io"),
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
        ("dsd_seq.experiments.compare", "models.speech.speech_task"),
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
        ("models.speech.speech_task", "dsd_seq.cli"),
        ("dsd_seq.cli", "dsd_seq.experiments.compare"),
    ),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_refuses_an_import_that_breaks_it(rule):
    broken, kept = (Import("made_up.py", 1, source, target) for source, target in BROKEN_AND_KEPT[rule])
    assert _breaking(rule, [broken, kept]) == [broken]


def _project_module_of(target: str) -> str | None:
    """The longest project module a target names (`import models.speech.ctc.x` -> models.speech.ctc)."""
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


def _children(package: Path) -> set[str]:
    """The modules (``__main__`` aside) and subpackages directly inside a package folder."""
    modules = {p.stem for p in package.glob("*.py") if not p.name.startswith("__")}
    return modules | {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}


LISTED_PACKAGES = sorted(
    str(init.parent.relative_to(ROOT))
    for top in ("models", "data_prep", "dsd_seq/training")
    for init in (ROOT / top).rglob("__init__.py")
)


@pytest.mark.parametrize("package", LISTED_PACKAGES)
def test_package_docstring_lists_every_module_of_the_package(package):
    """The package docstring is the folder's table of contents: one ``module`` (or ``subpackage``) a
    line, nothing stale."""
    docstring = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text())) or ""
    listed = set(re.findall(r"^    ``(\w+)``", docstring, flags=re.M))
    present = _children(ROOT / package)
    assert listed == present, (
        f"{package}/__init__.py's docstring does not list {sorted(present - listed)} "
        f"and lists {sorted(listed - present)}, which are not there"
    )


def test_the_subpackages_of_models_and_data_prep_are_found():
    assert {"data_prep/audio", "data_prep/features", "models/speech", "models/captioning"} <= set(
        LISTED_PACKAGES
    )


# Inside data_prep and models: each child (subpackage, or module beside them) is in one layer, lowest
# first. A child imports only itself and the children of lower layers; children of one layer never import
# each other. The package's own __init__ may re-export from any child (``from models import DeepSpeech2``)
# and no child imports it. The layers are the cut of docs/architecture.md, drawn from the import graph.
INNER_LAYERS = {
    "data_prep": [
        {"renamed"},  # the old module names: imports nothing of the project
        {"audio", "text"},  # audio files; characters, subword units, an n-gram LM
        {"corpora"},  # corpus scripts -> Kaldi data dirs (audio) and Karpathy split files
        {"features"},  # a data dir's features -> the one store (kaldi_dir, audio, vocab)
        {"batching", "images"},  # the one dataset over a store; image features of a caption corpus
    ],
    "models": [
        {"renamed", "input_errors"},  # the old module names; the inference tools' shared error
        {"speech", "captioning"},  # the two model families, each from its networks to its tool
    ],
}


def _child(package: str, module: str) -> str | None:
    """The child of ``package`` that ``module`` lies in (``data_prep.features.store`` -> ``features``);
    None for the package itself or a module outside it."""
    if not _in(module, package) or module == package:
        return None
    return module[len(package) + 1 :].split(".")[0]


def _layer_of(package: str) -> dict[str, int]:
    return {child: number for number, layer in enumerate(INNER_LAYERS[package]) for child in layer}


def inner_layer_breaks(package: str, imports: list[Import]) -> list[Import]:
    """The imports between children of ``package`` that go up or sideways, or into its ``__init__``."""
    layer = _layer_of(package)
    offenders = []
    for found in imports:
        source, target = _child(package, found.source), _child(package, found.target)
        if source is None or not _in(found.target, package):
            continue
        if target is None or (target != source and layer[target] >= layer[source]):
            offenders.append(found)
    return offenders


@pytest.mark.parametrize("package", list(INNER_LAYERS))
def test_every_child_of_the_package_is_in_a_layer(package):
    present = _children(ROOT / package)
    placed = set(_layer_of(package))
    assert placed == present, (
        f"INNER_LAYERS[{package!r}] misses {sorted(present - placed)} and names {sorted(placed - present)}"
    )


@pytest.mark.parametrize("package", list(INNER_LAYERS))
def test_inner_layer_rule(package):
    if offenders := inner_layer_breaks(package, ALL_IMPORTS):
        pytest.fail(
            f"inside {package}, a layer imports only itself and the layers below it "
            f"({' < '.join('/'.join(sorted(layer)) for layer in INNER_LAYERS[package])}), but:\n"
            + "\n".join(map(str, offenders))
        )


@pytest.mark.parametrize(
    ("source", "target", "breaks"),
    [
        ("data_prep.text.vocab", "data_prep.features.store", True),  # up
        ("data_prep.audio.audio_io", "data_prep.text.vocab", True),  # sideways, one layer
        ("data_prep.batching.speech_dataset", "data_prep.images.feature_cache", True),
        ("data_prep.corpora.wsj", "data_prep", True),  # into the package's __init__
        ("data_prep.features.store", "data_prep.corpora.kaldi_dir", False),  # down
        ("data_prep.features.store", "data_prep.features.extraction", False),  # inside its own child
        ("data_prep", "data_prep.renamed", False),  # the __init__ itself
        ("models.speech.speech_task", "models.captioning.neuraltalk", True),
        ("models.input_errors", "models.speech.ctc", True),
        ("models.captioning.image_captioner", "models.input_errors", False),
        ("models", "models.speech.ctc", False),  # the root re-exports
    ],
)
def test_the_inner_layer_rule_refuses_up_and_sideways_imports(source, target, breaks):
    package = source.split(".")[0]
    made_up = Import("made_up.py", 7, source, target)
    assert inner_layer_breaks(package, [made_up]) == ([made_up] if breaks else [])


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
