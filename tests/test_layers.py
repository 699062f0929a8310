"""ferops is built in floors, and nothing imports from a floor above its own (checked with `ast`, not trusted).

The kernel (data, tracking, models, train) must not know the experiments that
use it: a kernel module that imports a stage, the CLI or serving turns every
edit up there into a rerun of everything below (see tests/test_deps.py), and
makes the kernel impossible to reuse on its own. Imports inside functions count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from test_deps import ROOT, ferops_imports

# Lowest first. A module sits on the floor of the longest prefix listed here; it may import its own floor and
# any floor below, never one above. Every ferops module must be on some floor (test_every_module_has_a_floor).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation: errors, atomic files, typed params, the outputs table, what loading a model trusts",
     ("ferops", "ferops.errors", "ferops.io", "ferops.config", "ferops.quiet_tf", "ferops.stages", "ferops.trust")),
    ("data: datasets, on-disk formats, SynthFACS, faces; clip features",
     ("ferops.data", "ferops.features")),
    ("the tracking store: where runs go, whether the server answers, whether its file is sound, crash safety",
     ("ferops.tracking.store", "ferops.tracking.offline", "ferops.tracking.reachability",
      "ferops.tracking.sqlite_check", "ferops.tracking.run_safety")),
    ("building blocks: models, metrics, job runners, what is logged to the store and the registry policy",
     ("ferops.models", "ferops.evaluation", "ferops.analysis", "ferops.runners",
      "ferops.tracking")),
    ("the training kernel", ("ferops.train",)),
    ("applications of the kernel: tuning, serving, prediction", ("ferops.tuning", "ferops.serving", "ferops.predict")),
    ("stage functions: the data stages and the experiments", ("ferops.prepare", "ferops.experiments")),
    ("entry points: the CLI, the results summary, the stage functions under one name, the settings-profile printer",
     ("ferops.cli", "ferops.results", "ferops.pipeline", "ferops.profile")),
]

# Said outright in the issue that asked for this test, so it stays true even if LAYERS is reordered.
KERNEL = ("ferops.tracking", "ferops.train", "ferops.data")
NEVER_FROM_KERNEL = ("ferops.experiments", "ferops.prepare", "ferops.pipeline", "ferops.cli", "ferops.serving")


def _within(module: str, prefix: str) -> bool:
    # "ferops" alone is the package's __init__: a new top-level module must be given a floor, not inherit one.
    return module == prefix or (prefix != "ferops" and module.startswith(prefix + "."))


def floor(module: str) -> int | None:
    """The index in LAYERS of the longest prefix that `module` falls under, or None."""
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, prefix) and (best is None or len(prefix) > len(best[1])):
                best = (i, prefix)
    return None if best is None else best[0]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = ROOT / "ferops") -> dict[str, set[str]]:
    """Every ferops module under `package` -> the ferops modules it imports (anywhere in the file)."""
    graph = {}
    for path in sorted(package.rglob("*.py")):
        name = _module_name(path)
        graph[name] = ferops_imports([ast.parse(path.read_text())], name) - {name}
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """'a (floor i) imports b (floor j > i)' for every import that climbs."""
    return sorted(f"{a} (floor {floor(a)}: {LAYERS[floor(a)][0]}) imports {b} (floor {floor(b)})"
                  for a, imported in graph.items() for b in imported
                  if floor(a) is not None and floor(b) is not None and floor(b) > floor(a))


GRAPH = import_graph()


def test_every_module_has_a_floor():
    assert [m for m in GRAPH if floor(m) is None] == [], "add these to a floor of LAYERS"


def test_no_module_imports_from_a_higher_floor():
    assert upward_imports(GRAPH) == []


@pytest.mark.parametrize("kernel", KERNEL)
def test_the_kernel_never_imports_stages_cli_or_serving(kernel):
    bad = sorted(f"{a} imports {b}" for a, imported in GRAPH.items() if _within(a, kernel)
                 for b in imported if any(_within(b, top) for top in NEVER_FROM_KERNEL))
    assert bad == []


def test_the_store_does_not_import_registry_policy():
    """The registry builds on the store, not the other way round (configure() is below every registration)."""
    assert floor("ferops.tracking.store") < floor("ferops.tracking.registry")
    assert "ferops.tracking.registry" not in GRAPH["ferops.tracking.store"]


def test_an_upward_import_is_reported():
    au = "ferops.experiments.au.stage"
    graph = {"ferops.train.fit": {au, "ferops.models"}, au: {"ferops.train"}}
    assert upward_imports(graph) == [f"ferops.train.fit (floor {floor('ferops.train.fit')}: the training kernel) "
                                     f"imports {au} (floor {floor(au)})"]


def test_the_longest_prefix_decides_the_floor():
    assert floor("ferops.tracking.store") < floor("ferops.tracking.lineage") < floor("ferops.train.fit")
    assert floor("ferops.config") == 0 and floor("ferops.cli") == len(LAYERS) - 1
    assert floor("ferops.experiments.emotion.cv") == floor("ferops.prepare.validate")
    assert floor("elsewhere") is None and floor("ferops.new_module") is None


def test_no_cli_command_configures_the_store_itself():
    """Each stage function configures its own store; cli.py only parses arguments and calls one function."""
    cli = ast.parse((ROOT / "ferops" / "cli.py").read_text())
    imported = {a.asname or a.name for n in ast.walk(cli) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "configure" not in imported
