"""Nothing lost, nothing run that shouldn't be (issue 22): a careless or hostile input gets one line, exit 2.

Every refusal here is checked the same way: one stderr line of at most 200 characters, exit status 2, no
traceback, and the files around it byte-for-byte as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ferops import cli
from ferops.errors import shown_path
from ferops.io import MARKER, OutputRefused, atomic_dir, atomic_file

from conftest import ROOT, TINY, make_toy_dataset


def ferops_process(*args, cwd=None, env=None):
    """The real `ferops` program (a fresh process: what a user sees, tracebacks included)."""
    return subprocess.run([sys.executable, "-m", "ferops.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})})



def ferops_here(argv, capsys) -> tuple[int, str]:
    """`ferops ARGV` in this process (TensorFlow already loaded: fast): exit status and stderr."""
    try:
        cli.main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def one_line(code: int, stderr: str, *fragments: str) -> str:
    """The house rule for an expected failure: exit 2, one stderr line of <= 200 characters, no traceback."""
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert len(lines[0]) <= 200, lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with a digest of its content: equal snapshots mean nothing changed."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = "dir" if path.is_dir() and not path.is_symlink() else (
            f"link:{os.readlink(path)}" if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def params_file(tmp_path: Path, changes: dict | None = None, name: str = "params.yaml") -> Path:
    """The project's params.yaml with tiny settings and every path inside tmp_path."""
    from ferops.config import overlay

    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data = overlay(data, overlay(TINY, {"dataset": {"processed_dir": str(tmp_path / "processed"),
                                                    "raw_dir": str(tmp_path / "raw")},
                                        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                     "artifact_root": str(tmp_path / "mlartifacts")}}))
    path = tmp_path / name
    path.write_text(yaml.safe_dump(overlay(data, changes or {})))
    return path


# ---------------------------------------------------------------------------- 1. never delete what ferops did not write


@pytest.fixture
def foreign(tmp_path):
    """A user's folder with their thesis in it."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.txt").write_text("three years of work\n")
    return folder


@pytest.mark.slow
def test_generate_onto_a_users_folder_keeps_the_file(tmp_path, foreign):
    params = params_file(tmp_path)
    before = snapshot(tmp_path)
    result = ferops_process("--params", str(params), "generate", "--preset", "posed", "--n", "3",
                            "--out", str(foreign), "--no-track", cwd=tmp_path)
    one_line(result.returncode, result.stderr, shown_path(foreign), "did not write", "another --out")
    assert (foreign / "thesis.txt").read_text() == "three years of work\n"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("target", ["file", ".", "project root"])
def test_generate_onto_a_file_the_working_folder_or_the_project_root_is_refused(tmp_path, capsys, target):
    params = params_file(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me\n")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")  # tmp_path is a project root
    out = {"file": str(tmp_path / "notes.txt"), ".": ".", "project root": str(tmp_path)}[target]
    before = snapshot(tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, err = ferops_here(["--params", str(params), "generate", "--n", "2", "--out", out, "--no-track"], capsys)
    finally:
        os.chdir(cwd)
    one_line(code, err, f"--out {shown_path(out)}")
    assert snapshot(tmp_path) == before  # and no hidden .notes.txt.old


def test_preprocess_onto_a_folder_holding_raw_data_is_refused_before_any_work(tmp_path, capsys):
    """`dataset.processed_dir: data` must not wipe data/raw."""
    make_toy_dataset().save(tmp_path / "processed")  # (an input this stage would not even read)
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    params = params_file(tmp_path, {"dataset": {"processed_dir": str(data)}})
    before = snapshot(tmp_path)
    code, err = ferops_here(["--params", str(params), "preprocess"], capsys)
    one_line(code, err, f"dataset.processed_dir {shown_path(data)}", "did not write")
    assert snapshot(tmp_path) == before


def test_domain_onto_a_users_folder_is_refused(tmp_path, capsys, foreign):
    params = params_file(tmp_path, {"domains": {"posed": {"out": str(foreign)}}})
    before = snapshot(tmp_path)
    code, err = ferops_here(["--params", str(params), "domain", "posed"], capsys)
    one_line(code, err, f"domains.posed.out {shown_path(foreign)}", "did not write")
    assert snapshot(tmp_path) == before


def test_a_folder_ferops_wrote_is_replaced_and_marked(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target, stage="generate") as tmp:
        (tmp / "a.txt").write_text("1")
    assert json.loads((target / MARKER).read_text()) == {"written_by": "ferops", "stage": "generate"}
    with atomic_dir(target, stage="generate") as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "b.txt"]
    make_toy_dataset().save(tmp_path / "older")  # a dataset from before the marker: its meta.json is recognised
    (tmp_path / "older" / MARKER).unlink()
    with atomic_dir(tmp_path / "older") as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["older", "out"]  # no .old or .tmp left beside


def test_import_onto_an_existing_name_is_one_line_naming_the_flag(tmp_path, capsys):
    from ferops.data.formats import write

    from format_fixtures import make

    source = write("folders", make("wild", n=7, seed=0, size=32), tmp_path / "src" / "faces")
    args = ["import-data", str(source), "--format", "folders", "--raw-root", str(tmp_path / "raw"), "--no-dvc"]
    assert ferops_here(args, capsys)[0] == 0
    before = snapshot(tmp_path)
    one_line(*ferops_here(args, capsys), "already exists", "--name")
    assert snapshot(tmp_path) == before


def test_outputs_respect_the_umask(tmp_path):
    """mkstemp/mkdtemp alone make 0600/0700 files, which colleagues on a shared machine cannot read."""
    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "registry.json") as tmp:
            tmp.write_text("{}")
        with atomic_dir(tmp_path / "processed") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "registry.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "processed").stat().st_mode & 0o777 == 0o755


def test_an_output_file_in_a_missing_folder_is_refused_not_created(tmp_path):
    with pytest.raises(OutputRefused, match="does not exist"):
        with atomic_file(tmp_path / "no" / "such" / "x.csv", make_parents=False):
            pass
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- 3. bounded error messages, 6. schema

_MEASURED = """
import sys, time
from ferops import cli
start = time.perf_counter()
try:
    cli.main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(sys.argv[1], "w") as fh:
    hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    fh.write(f"{code} {time.perf_counter() - start} {hwm}")
"""


def measured(tmp_path, *args):
    """`ferops ARGS` in a fresh process: (result, seconds, peak RSS in MB of that process alone).

    VmHWM, not getrusage: Linux carries ru_maxrss over fork+exec, so a child would report pytest's own peak.
    """
    record = tmp_path / "measured.txt"
    result = subprocess.run([sys.executable, "-c", _MEASURED, str(record), *args], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    code, seconds, rss_kb = record.read_text().split()
    result.returncode = int(code)
    return result, float(seconds), int(rss_kb) / 1024


def test_yaml_alias_bomb_is_one_short_line_in_bounded_memory_and_time(tmp_path):
    """A 4 KB params file whose dataset.name expands to 9**9 strings once drove `validate` past 4 GB in 53 s."""
    params = params_file(tmp_path)
    levels = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    text = re.sub(r"\n  name: .*\n", f"\n  name: [{', '.join(levels)}]\n", params.read_text(), count=1)
    params.write_text(text)
    assert len(text.encode()) < 12_000
    before = snapshot(tmp_path)
    result, seconds, rss_mb = measured(tmp_path, "validate")  # in tmp_path, with its params.yaml
    line = one_line(result.returncode, result.stderr, "dataset.name: expected a string, got [['lol', ")
    assert seconds < 5 and rss_mb < 300, (seconds, rss_mb)
    print(f"alias bomb: {seconds:.2f} s, peak RSS {rss_mb:.0f} MB: {line}")
    assert snapshot(tmp_path) == {**before, "measured.txt": snapshot(tmp_path)["measured.txt"]}


def test_a_ten_megabyte_key_is_echoed_cut(tmp_path, capsys, monkeypatch):
    params = params_file(tmp_path)
    params.write_text(params.read_text() + "? " + "k" * 10_000_000 + "\n: 1\n")  # (a `k: v` key stops at 1024)
    monkeypatch.chdir(tmp_path)
    one_line(*ferops_here(["cv"], capsys), "params.yaml: unknown key kkk", "...")


@pytest.mark.parametrize("changes, fragment", [
    ({"train": {"learning_rate": float("inf")}}, "train.learning_rate: inf must be a finite number"),
    ({"train": {"decay": float("nan")}}, "train.decay: nan must be a finite number"),
    ({"model": {"width": 1e9}}, "model.width: 1000000000.0 must be <= 4.0"),
])
def test_schema_takes_finite_numbers_and_a_bounded_width(tmp_path, capsys, changes, fragment):
    params = params_file(tmp_path, changes)
    before = snapshot(tmp_path)
    one_line(*ferops_here(["--params", str(params), "cv", "--out", str(tmp_path / "out")], capsys), fragment)
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_out_of_memory_is_recognised_as_one_line(tmp_path):
    """A real TensorFlow allocation failure (a 4 TB tensor) is the kind main() turns into its one line."""
    import tensorflow as tf

    from ferops.cli import _out_of_memory

    with pytest.raises(Exception) as info:
        tf.zeros([1_000_000, 1_000_000])
    assert _out_of_memory(info.value) and not _out_of_memory(ValueError("x"))


# ---------------------------------------------------------------------------- 4. a damaged store is one line


@pytest.fixture(scope="module")
def real_store(tmp_path_factory):
    """A real MLflow SQLite store with one experiment and one run in it."""
    import mlflow

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{path}")
    try:
        mlflow.set_experiment("probe")
        with mlflow.start_run():
            mlflow.log_metric("x", 1.0)
    finally:
        mlflow.set_tracking_uri(previous)
    return path


def damaged(kind: str, real_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "h.db"
    data = real_store.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 3], "not sqlite": b"just some text\n" * 100,
                      "zeroed": data[:100] + bytes(len(data) - 100)}[kind])
    return path


@pytest.mark.parametrize("kind", ["truncated", "not sqlite", "zeroed"])
@pytest.mark.parametrize("argv", [["registry", "list"], ["validate"]])
def test_a_damaged_store_is_one_line_and_nothing_is_rewritten(tmp_path, capsys, monkeypatch, real_store, kind, argv):
    params = params_file(tmp_path)
    make_toy_dataset().save(tmp_path / "processed")
    store = damaged(kind, real_store, tmp_path)
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "validation.json").write_text('{"earlier": "report"}')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store.name}")  # as the project's sqlite:///mlflow.db
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    fragment = "is not an SQLite database" if kind == "not sqlite" else "is damaged"
    one_line(*ferops_here(["--params", str(params), *argv], capsys), "tracking store h.db", fragment)
    assert snapshot(tmp_path) == before


def test_a_read_only_store_refuses_a_writing_command_before_it_writes(tmp_path, capsys, monkeypatch, real_store):
    params = params_file(tmp_path)
    make_toy_dataset().save(tmp_path / "processed")
    store = tmp_path / "ro.db"
    store.write_bytes(real_store.read_bytes())
    store.chmod(0o444)
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "validation.json").write_text('{"earlier": "report"}')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///ro.db")
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    one_line(*ferops_here(["--params", str(params), "validate"], capsys), "tracking store ro.db", "read-only")
    assert snapshot(tmp_path) == before
    code, err = ferops_here(["--params", str(params), "registry", "list"], capsys)  # reading is allowed
    assert "read-only" not in err and "no registered model 'fer-emotion'" in err, err


def test_a_read_only_command_on_a_missing_store_creates_nothing(tmp_path, capsys, monkeypatch):
    params = params_file(tmp_path)
    missing = tmp_path / "no" / "such" / "x.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    before = snapshot(tmp_path)
    one_line(*ferops_here(["--params", str(params), "registry", "list"], capsys), "does not exist")
    assert snapshot(tmp_path) == before and not (tmp_path / "no").exists()


def test_reconcile_on_a_fresh_clone_with_no_store_yet_succeeds(tmp_path, capsys, monkeypatch):
    """`make run` starts with `ferops reconcile`, before any store exists: every record is stale, nothing fails."""
    params = params_file(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    code, err = ferops_here(["--params", str(params), "reconcile"], capsys)
    assert code == 0, err


# ---------------------------------------------------------------------------- 2. model loading that says what it trusts


def _face(tmp_path: Path) -> Path:
    import cv2
    import numpy as np

    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((48, 48), 128, np.uint8))
    return face


def _tiny_model():
    import dataclasses

    from ferops.models import build_cnn

    from conftest import make_params as tiny

    return build_cnn(dataclasses.replace(tiny().model, width=0.0625), (48, 48, 1), 8)


@pytest.mark.slow
def test_a_pyfunc_folder_with_a_malicious_reduce_does_not_run_without_trust(tmp_path, capsys, monkeypatch):
    import mlflow

    marker = tmp_path / "pwned.txt"

    class Evil(mlflow.pyfunc.PythonModel):
        def __reduce__(self):  # unpickling calls open(marker, "w"): a harmless stand-in for a shell command
            return (open, (str(marker), "w"))

        def predict(self, context, model_input):
            return model_input

    mlflow.pyfunc.save_model(str(tmp_path / "evil"), python_model=Evil())
    marker.unlink(missing_ok=True)  # (saving checked the pickle by loading it: it ran once here)
    capsys.readouterr()
    params_file(tmp_path)
    _face(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    one_line(*ferops_here(["predict", "face.png", "--model", "evil"], capsys), "evil: loading", "--trust-model")
    assert not marker.exists() and snapshot(tmp_path) == before
    one_line(*ferops_here(["predict", "face.png", "--model", "evil", "--trust-model", "--runtime", "numpy"], capsys),
             "not a fer-pipeline bundle", "--runtime keras")  # numpy reads bundles only: no silent fall back
    assert not marker.exists() and snapshot(tmp_path) == before
    ferops_here(["predict", "face.png", "--model", "evil", "--trust-model"], capsys)
    assert marker.exists()  # the refusal above was all that stood between the folder and its code


def test_a_keras_lambda_layer_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    import keras

    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(8)(keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2)(inputs)))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    params_file(tmp_path)
    face = _face(tmp_path)
    monkeypatch.chdir(tmp_path)
    one_line(*ferops_here(["predict", str(face), "--whole-image", "--model", "lambda.keras"], capsys),
             "lambda.keras: cannot load the model")


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "missing", "no MLmodel"])
def test_a_damaged_model_keras_in_a_registered_version_is_one_line(tmp_path, capsys, monkeypatch, damage):
    """Issue 22: also "No such artifact: 'MLmodel'" (the version's model folder lost its MLmodel) names the model."""
    import mlflow
    import numpy as np

    params = params_file(tmp_path)  # (absolute store path: MLflow caches one engine per URI string)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from ferops.config import load_params
    from ferops.tracking.store import configure

    configure(load_params(params).tracking)
    model = _tiny_model()
    x = np.zeros((2, 48, 48, 1), np.float32)
    with mlflow.start_run():
        info = mlflow.keras.log_model(model, name="m", signature=mlflow.models.infer_signature(x, model.predict(x)))
    mlflow.register_model(info.model_uri, "fer-emotion")
    capsys.readouterr()
    keras_file = next((tmp_path / "mlartifacts").rglob("model.keras"))
    if damage == "truncated":
        keras_file.write_bytes(keras_file.read_bytes()[:1000])
    elif damage == "missing":
        keras_file.unlink()
    else:
        next((tmp_path / "mlartifacts").rglob("MLmodel")).unlink()
    face = _face(tmp_path)
    before = snapshot(tmp_path)
    one_line(*ferops_here(["predict", str(face), "--whole-image", "--model", "models:/fer-emotion/1"], capsys),
             "models:/fer-emotion/1 v1 (data/model.keras): cannot load the model")
    ours = lambda snap: {k: v for k, v in snap.items() if not k.startswith(("mlartifacts", "mlflow.db"))}  # noqa: E731
    assert ours(snapshot(tmp_path)) == ours(before)  # (MLflow's own load notes registered_model_meta there)


# ---------------------------------------------------------------------------- 7. the small ones


def test_a_symlink_loop_in_a_predict_folder_is_noted_not_silently_skipped(tmp_path):
    from ferops.predict import symlinked_folders

    (tmp_path / "images" / "a").mkdir(parents=True)
    os.symlink(tmp_path / "images", tmp_path / "images" / "a" / "back")
    assert symlinked_folders([str(tmp_path / "images")]) == [
        f"{tmp_path / 'images' / 'a' / 'back'}: symlinked folder not searched (a loop; links to folders are not "
        f"followed)"]


def test_predict_out_in_a_missing_folder_is_one_line_and_creates_nothing(tmp_path, capsys, monkeypatch):
    params_file(tmp_path)
    _tiny_model().save(tmp_path / "model.keras")
    _face(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    one_line(*ferops_here(["predict", "face.png", "--whole-image", "--model", "model.keras", "--out",
                           "no/such/x.csv"], capsys), "--out no/such/x.csv", "does not exist")
    assert snapshot(tmp_path) == before


def test_a_moved_project_is_warned_that_its_artifacts_lie_outside(tmp_path, monkeypatch):
    from ferops.tracking.store import artifacts_elsewhere

    project = tmp_path / "copy"
    project.mkdir()
    monkeypatch.chdir(project)
    old = (tmp_path / "original" / "mlartifacts").as_uri()
    assert artifacts_elsewhere("sqlite:///mlflow.db", old) == str(tmp_path / "original" / "mlartifacts")
    assert artifacts_elsewhere("sqlite:///mlflow.db", (project / "mlartifacts").as_uri()) is None
    assert artifacts_elsewhere("http://127.0.0.1:5000", old) is None  # a server decides its own


def test_a_deep_output_path_still_gives_a_short_line(tmp_path, capsys):
    """Paths are echoed by their tail: a refusal under a long temp folder stays within 200 characters."""
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 12)
    deep.mkdir(parents=True)
    (deep / "thesis.txt").write_text("mine")
    code, err = ferops_here(["generate", "--preset", "posed", "--n", "3", "--out", str(deep), "--no-track"], capsys)
    line = one_line(code, err, "ferops did not write this folder")
    assert "a-rather-long-folder-name" in line and (deep / "thesis.txt").read_text() == "mine"
