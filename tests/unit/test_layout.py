"""The package's layout: imports run down the data flow, never back up to the orchestrator.

Read statically from the source (every ``import`` and ``from ... import``, also inside
functions), so an import made only on some path still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pipeline

ROOT = Path(pipeline.__file__).parent
# The orchestration level: what runs the stages, and the entry points above it.
ORCHESTRATION = ("pipeline.cli", "pipeline.run", "pipeline.train")
MAX_LINES = 400  # style.md: a module that passes ~400 lines is usually two modules


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The ``pipeline`` modules that module ``name`` imports (packages and submodules)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES}


def reachable_from(start: str) -> set[str]:
    """Every ``pipeline`` module that importing ``start`` can load (parents included)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages
        todo += sorted(imports_of(name))
    return seen


def test_imports_of__sees_imports_inside_functions():
    # cli imports the run only inside its command functions.
    assert "pipeline.run" in imports_of("pipeline.cli")
    assert "pipeline.scenes" in imports_of("pipeline.cli")


def test_production_run__imports_nothing_from_the_generated_scenes():
    loaded = reachable_from("pipeline.run")
    assert "pipeline.excavation" in loaded  # the walk does follow the stages
    assert not sorted(m for m in loaded if m.startswith("pipeline.scenes"))


@pytest.mark.parametrize("name", sorted(set(MODULES) - set(ORCHESTRATION)))
def test_stage_modules__never_import_the_orchestrator(name):
    assert not imports_of(name) & set(ORCHESTRATION), name


def test_generated_scenes__reach_no_stage_of_the_run():
    loaded = set().union(*(reachable_from(m) for m in MODULES if m.startswith("pipeline.scenes")))
    assert not loaded & set(ORCHESTRATION)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules__stay_under_the_size_guideline(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name]}: {lines} lines"
