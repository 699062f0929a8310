"""ferops/stages.py, the one table of stage outputs, agrees with dvc.yaml and is what the CLI defaults to."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from ferops.cli import build_parser
from ferops.stages import COMMANDS, EMOTION_MODEL, STAGES

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _outputs(stage: dict, kind: str) -> dict[Path, dict]:
    """A stage's `outs`/`metrics`/`plots` as {path: options}."""
    entries = {}
    for entry in stage.get(kind, []):
        path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        entries[Path(path)] = options or {}
    return entries


def _out_option(cmd: str) -> Path | None:
    argv = shlex.split(cmd)
    for flag in ("--out", "--report"):
        if flag in argv:
            return Path(argv[argv.index(flag) + 1])
    return None


@pytest.mark.parametrize("command", sorted(STAGES))
def test_dvc_yaml_stage_writes_where_the_table_says(command):
    s = STAGES[command]
    stage = DVC[s.stage]
    assert shlex.split(stage["cmd"])[:2] == ["ferops", command]
    assert _out_option(stage["cmd"]) == s.out
    outs = _outputs(stage, "outs") | _outputs(stage, "metrics") | _outputs(stage, "plots")
    assert any(p == s.out or p in s.out.parents or s.out in p.parents for p in outs), f"{s.out} is no output"
    if s.metrics is not None:  # declared as metrics, or (tune: inside its one uncached folder) written within an out
        assert s.metrics in _outputs(stage, "metrics") or any(p in s.metrics.parents for p in outs)
    if s.record is not None:  # uncached, so removing it (ferops reconcile) is enough for `dvc repro` to rerun
        holder = [(p, o) for p, o in outs.items() if p == s.record or p in s.record.parents]
        assert holder and all(o.get("cache") is False for _, o in holder), f"{s.record}: not an uncached output"
    if s.registration is not None:  # uncached too: reconcile removes it with the record
        holder = [(p, o) for p, o in outs.items() if p == s.registration or p in s.registration.parents]
        assert holder and all(o.get("cache") is False for _, o in holder), f"{s.registration}: not an uncached output"


def test_every_dvc_stage_with_an_out_option_is_in_the_table():
    with_out = {name for name, stage in DVC.items() if "cmd" in stage and _out_option(stage["cmd"])}
    assert with_out == {s.stage for s in STAGES.values() if _out_option(DVC[s.stage]["cmd"])}
    assert {s.stage for s in STAGES.values()} <= set(DVC)


@pytest.mark.parametrize("command", sorted(STAGES | COMMANDS))
def test_cli_defaults_come_from_the_table(command):
    args = build_parser().parse_args([command])
    assert Path(args.report if command == "validate" else args.out) == (STAGES | COMMANDS)[command].out


def test_models_start_from_the_refit_output():
    assert Path(build_parser().parse_args(["cross-task"]).emotion_model) == EMOTION_MODEL
    assert Path(build_parser().parse_args(["analyze"]).model) == EMOTION_MODEL
    assert "outputs/model/model.keras" in DVC["cross_task"]["cmd"] and EMOTION_MODEL.parent == STAGES["refit"].out
