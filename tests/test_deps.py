"""dvc.yaml's `deps` name every ferops module each stage's result depends on: checked, not promised.

A stage's code is what its `cmd` reaches: `ferops <command>` runs one command function
in ferops/cli.py, and from there every ferops module imported, transitively, at module
level or inside a function (ferops imports lazily a lot). A module missing from `deps`
means an edit there leaves a stale result that `dvc status` calls up to date; a ferops
dep the stage never reaches means needless reruns. A dep naming a folder covers the
modules inside it.

The walk is by module (a file is a DVC dep), found by `ast`, never by importing the code.
"""

from __future__ import annotations

import ast
import copy
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "ferops" / "cli.py"


def module_file(name: str) -> Path | None:
    """ferops/a/b.py or ferops/a/b/__init__.py for the module `ferops.a.b`, relative to the repo; None if neither."""
    base = Path(*name.split("."))
    for rel in (base.with_suffix(".py"), base / "__init__.py"):
        if (ROOT / rel).is_file():
            return rel
    return None


def ferops_imports(nodes, importer: str) -> set[str]:
    """The ferops modules that the import statements among `nodes` (walked whole, functions included) load.

    `from ferops.pkg import name` loads the submodule ferops.pkg.name when there is one, else the
    package itself (whose __init__ defines `name`). `importer` resolves relative imports.
    """
    found = set()
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Import):
                found |= {a.name for a in n.names if a.name.split(".")[0] == "ferops"}
            elif isinstance(n, ast.ImportFrom):
                if n.level:
                    package = importer.split(".")[: -n.level] if module_file(importer).name != "__init__.py" \
                        else importer.split(".")[: len(importer.split(".")) - n.level + 1]
                    base = ".".join(package + ([n.module] if n.module else []))
                else:
                    base = n.module or ""
                if base.split(".")[0] != "ferops":
                    continue
                for a in n.names:
                    found.add(f"{base}.{a.name}" if module_file(f"{base}.{a.name}") else base)
    return found


def reachable(start: set[str]) -> set[str]:
    """Every ferops module that importing the `start` modules loads, transitively."""
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name)
        assert path is not None, f"{name}: imported but no such module in ferops/"
        seen.add(name)
        todo += ferops_imports([ast.parse((ROOT / path).read_text())], name) - seen
    return seen


def command_function(cmd: str) -> str:
    """The name of the ferops/cli.py function that a stage's `cmd` (`ferops <command> ...`) runs."""
    from ferops.cli import build_parser

    argv = shlex.split(re.sub(r"\$\{[^}]*\}", "x", cmd))
    assert argv[0] == "ferops", f"{cmd!r}: a stage runs one `ferops` command"
    return build_parser().parse_args(argv[1:]).func.__name__


def entry_modules(function: str, cli_tree: ast.Module | None = None) -> set[str]:
    """The ferops modules a cli.py command function imports, with those of the cli.py helpers it calls."""
    cli_tree = cli_tree or ast.parse(CLI.read_text())
    functions = {n.name: n for n in cli_tree.body if isinstance(n, ast.FunctionDef)}
    seen, todo, modules = set(), [function], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        modules |= ferops_imports([functions[name]], "ferops.cli")
        todo += [n.func.id for n in ast.walk(functions[name])
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in functions]
    return modules


def stage_modules(stage: dict) -> set[Path]:
    """The ferops files a stage's result depends on: what its command function reaches."""
    return {module_file(m) for m in reachable(entry_modules(command_function(stage["cmd"])))}


def _ferops_deps(stage: dict) -> list[Path]:
    return [Path(d) for d in stage.get("deps", []) if Path(d).parts[:1] == ("ferops",)]


def _covers(dep: Path, module: Path) -> bool:
    return dep == module or dep in module.parents


def missing_deps(stage: dict) -> list[str]:
    """The modules the stage reaches that no dep names (itself, or a folder above it)."""
    deps = _ferops_deps(stage)
    return sorted(str(m) for m in stage_modules(stage) if not any(_covers(d, m) for d in deps))


def unneeded_deps(stage: dict) -> list[str]:
    """The ferops deps that cover nothing the stage reaches: each costs a needless rerun when it changes."""
    needed = stage_modules(stage)
    return sorted(str(d) for d in _ferops_deps(stage) if not any(_covers(d, m) for m in needed))


def stages(dvc: dict) -> dict[str, dict]:
    """dvc.yaml's stages, each `foreach` stage as its `do` template."""
    return {name: s.get("do", s) for name, s in dvc["stages"].items()}


DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())


@pytest.mark.parametrize("name", sorted(stages(DVC)))
def test_stage_deps_name_every_module_it_reaches(name):
    stage = stages(DVC)[name]
    assert missing_deps(stage) == [], f"dvc.yaml stage {name}: add these to its deps"
    assert unneeded_deps(stage) == [], f"dvc.yaml stage {name}: it never imports these; drop them from its deps"


def test_a_module_removed_from_deps_is_reported():
    dvc = copy.deepcopy(DVC)
    cv = stages(dvc)["cv"]
    assert "ferops/experiments/emotion/cv.py" in cv["deps"]
    cv["deps"].remove("ferops/experiments/emotion/cv.py")
    assert missing_deps(cv) == ["ferops/experiments/emotion/cv.py"]


def test_a_folder_dep_covers_its_modules_and_removing_it_reports_them():
    dvc = copy.deepcopy(DVC)
    cv = stages(dvc)["cv"]
    assert "ferops/models" in cv["deps"] and missing_deps(cv) == []
    cv["deps"].remove("ferops/models")
    assert "ferops/models/cnn.py" in missing_deps(cv) and "ferops/models/heads.py" in missing_deps(cv)


def test_a_dep_the_stage_never_reaches_is_reported():
    dvc = copy.deepcopy(DVC)
    cv = stages(dvc)["cv"]
    cv["deps"].append("ferops/predict.py")  # the evaluate command's, not cv's
    assert unneeded_deps(cv) == ["ferops/predict.py"]


def test_imports_inside_functions_count_and_submodules_resolve():
    tree = ast.parse("import os\n"
                     "def f():\n"
                     "    from ferops.tracking import registry\n"
                     "    from ferops.models import build_model\n"
                     "    import ferops.io\n")
    assert ferops_imports([tree], "ferops.x") == {"ferops.tracking.registry", "ferops.models", "ferops.io"}


def test_the_walk_follows_a_command_function_to_its_stage_module():
    assert command_function("ferops cv --out outputs/cv") == "cmd_cv"
    assert command_function("ferops domain ${key}") == "cmd_domain"
    assert "ferops.experiments.emotion.cv" in entry_modules("cmd_cv")
    assert "ferops.config" in entry_modules("cmd_cv")  # through the `_params` helper
    cv = reachable(entry_modules("cmd_cv"))
    assert "ferops.train.fit" in cv and "ferops.predict" not in cv and "ferops.cli" not in cv
