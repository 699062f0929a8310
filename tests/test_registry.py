"""Registry policy against real MLflow stores: SQLite files in tmp, and the session `mlflow server` over HTTP.

No model is trained here: one tiny pyfunc model is logged per store and registered over and
over, since the policy is about versions, tags and aliases, not about weights.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import socket
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ferops.errors import FeropsError
from ferops.tracking import registry
from ferops.tracking.registry import (
    CANDIDATE,
    CHAMPION,
    REQUIRED_TAGS,
    ComparabilityKey,
    ModelNotFoundError,
    RegistryError,
    TrackingUnreachableError,
    check_model_uri,
    format_versions,
    list_versions,
    promote,
    register,
    rollback,
)

KEY = ComparabilityKey(task="emotion", dataset="synthfacs", data_hash="0123456789abcdef0123.dir",
                       protocol="subject", classes=("happiness", "anger", "neutral"))
METRIC = "cv_accuracy_mean"
RACES = 20  # SQLite rounds; without the lock and the re-check 0.90 won only 3 of 20 (measured)
HTTP_RACES = 10  # a server round costs ~3x more; without the re-check 0.90 won 4 of 10 (measured)


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return np.zeros((len(model_input), 3))


def _use_store(uri: str) -> None:
    """Point this process at `uri` for tracking AND registry (a stale MLFLOW_REGISTRY_URI would win otherwise)."""
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    mlflow.tracking._model_registry.utils._registry_uri = None
    mlflow.set_tracking_uri(uri)


def _log_model(experiment: str, artifact_location: str | None = None) -> str:
    existing = mlflow.get_experiment_by_name(experiment)
    exp_id = existing.experiment_id if existing else mlflow.create_experiment(experiment, artifact_location)
    with mlflow.start_run(experiment_id=exp_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=_Constant(), pip_requirements=["mlflow"])
    return info.model_uri


@dataclasses.dataclass
class Store:
    uri: str
    model_uri: str
    root: Path | None = None


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        _use_store(uri)
        yield Store(uri, _log_model("registry", (root / "artifacts").as_uri()), root)


@pytest.fixture
def store(sqlite_store, monkeypatch):
    """The module's SQLite store, selected for this test (other modules' fixtures move the global URIs)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store.uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    _use_store(sqlite_store.uri)
    return sqlite_store


@pytest.fixture(scope="module")
def http_store(mlflow_server):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        _use_store(mlflow_server)
        yield Store(mlflow_server, _log_model("registry-http"))


_counter = iter(range(10**6))


def _name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


def _reg(store: Store, name: str, score: float, key: ComparabilityKey = KEY, **kw) -> registry.Promotion:
    return register(store.model_uri, name, score, kw.pop("metric", METRIC), key, cv_run_id="cv-run", **kw)


def _aliases(name: str) -> dict[str, str]:
    return {a: str(v) for a, v in MlflowClient().get_registered_model(name).aliases.items()}


def _champion(name: str) -> str | None:
    return _aliases(name).get(CHAMPION)


# ---------------------------------------------------------------------------- policy


def test_first_model_champion_then_only_strictly_better(store):
    name = _name("policy")
    outcomes = [_reg(store, name, s) for s in (0.70, 0.65, 5 / 6, 5 / 6)]  # 5/6 has more digits than a rounded tag
    assert [o.promoted for o in outcomes] == [True, False, True, False]  # a tie is not evidence
    assert outcomes[0].reason.startswith("first comparable model: no champion yet")
    assert outcomes[1].reason == "0.6500 does not beat champion v1 0.7000 (cv_accuracy_mean)"
    assert _aliases(name) == {CHAMPION: outcomes[2].version, CANDIDATE: outcomes[3].version}
    v3 = MlflowClient().get_model_version(name, outcomes[2].version)
    assert float(v3.tags["score"]) == 5 / 6  # full precision, so the tie above is seen as a tie
    assert all(v3.tags.get(t) for t in REQUIRED_TAGS)
    assert ComparabilityKey.from_tags(v3.tags) == KEY


def test_close_scores_are_printed_apart(store):
    name = _name("digits")
    _reg(store, name, 0.8333333)
    p = _reg(store, name, 0.8333334)
    assert p.promoted and p.reason.startswith("0.8333334 beats champion v1 0.8333333")


@pytest.mark.parametrize("change, expected", [
    ({"protocol": "paper"}, "protocol paper != subject"),
    ({"data_hash": "ffffffffffffffffffff.dir"}, "data_hash ffffffffffff… != 0123456789ab…"),
    ({"dataset": "ck+"}, "dataset ck+ != synthfacs"),
    ({"classes": ("happiness", "anger", "contempt")}, "classes differ (only here: contempt; only there: neutral)"),
    ({"metric": "cv_f1_macro"}, "metric cv_f1_macro != cv_accuracy_mean"),
])
def test_incomparable_model_stays_candidate_and_says_why(store, change, expected):
    name = _name("incomparable")
    champion = _reg(store, name, 0.50)
    metric = change.pop("metric", METRIC)
    key = dataclasses.replace(KEY, **change)
    p = _reg(store, name, 0.99, key, metric=metric)
    assert not p.promoted
    assert p.reason.startswith(f"not comparable with champion v{champion.version} (this != champion): {expected}")
    assert _champion(name) == champion.version
    tags = MlflowClient().get_model_version(name, p.version).tags
    assert tags["promotion"] == p.reason


def test_class_order_does_not_matter(store):
    name = _name("order")
    _reg(store, name, 0.5)
    assert _reg(store, name, 0.6, dataclasses.replace(KEY, classes=tuple(reversed(KEY.classes)))).promoted


def test_extra_tags_cannot_forge_evidence(store):
    name = _name("forge")
    p = _reg(store, name, 0.5, tags={"score": "0.99", "key.protocol": "paper", "refit_run_id": "r1"})
    tags = MlflowClient().get_model_version(name, p.version).tags
    assert tags["score"] == repr(0.5) and tags["key.protocol"] == "subject" and tags["refit_run_id"] == "r1"


def test_register_refuses_missing_evidence(store):
    with pytest.raises(RegistryError, match="cv_run_id"):
        register(store.model_uri, _name("no-run"), 0.5, METRIC, KEY)
    with pytest.raises(RegistryError, match="finite"):
        register(store.model_uri, _name("nan"), float("nan"), METRIC, KEY, cv_run_id="r")
    with pytest.raises(RegistryError, match="protocol is empty"):
        dataclasses.replace(KEY, protocol="")


# ---------------------------------------------------------------------------- crash safety


def test_incomplete_versions_never_become_champion(store):
    """The states a crash between creating a version and tagging it leaves behind (older code, or by hand)."""
    name = _name("crash")
    first = _reg(store, name, 0.50)
    bare = mlflow.register_model(store.model_uri, name).version  # created, no tags at all
    half = {**KEY.as_tags(), "score": "0.99", "score.metric": METRIC, "score.higher_is_better": "true"}
    partial = mlflow.register_model(store.model_uri, name, tags=half).version  # best score, no cv_run_id/promotion

    rows = {r.version: r for r in list_versions(name)}
    assert not rows[str(bare)].complete and not rows[str(partial)].complete
    assert rows[str(partial)].flags == ("incomplete: missing tags cv_run_id, promotion",)
    assert rows[str(bare)].flags[0].startswith("incomplete: no registration tags")
    assert "incomplete" in format_versions(list(rows.values()))
    with pytest.raises(RegistryError, match=f"v{partial} is incomplete .*missing tags: cv_run_id, promotion"):
        promote(name, partial, why="looks best")

    p = _reg(store, name, 0.80)
    assert p.promoted and _champion(name) == p.version  # the re-check did not pick the 0.99 partial one
    assert _aliases(name)[CANDIDATE] == p.version
    assert first.version == "1"


def test_crash_before_aliases_leaves_complete_tags_and_old_champion(store, monkeypatch):
    """Kill the registration at its first alias move: every tag is already there, no alias moved."""
    name = _name("crash-alias")
    champion = _reg(store, name, 0.50)

    def crash(*args):
        raise SystemExit("killed")

    monkeypatch.setattr(registry, "_set_alias", crash)
    with pytest.raises(SystemExit):
        _reg(store, name, 0.90)
    monkeypatch.undo()
    _use_store(store.uri)
    rows = list_versions(name)
    crashed = rows[-1]
    assert crashed.complete and crashed.aliases == () and crashed.score == 0.90
    assert _champion(name) == champion.version
    # The next registration's re-check settles the registry on the evidence, crashed version included.
    after = _reg(store, name, 0.70)
    assert _champion(name) == crashed.version and not after.promoted
    assert "then v2 took champion" in after.reason


# ---------------------------------------------------------------------------- concurrency


def _race_worker(job: tuple) -> tuple[str, bool]:
    uri, model_uri, name, score, start_at = job
    _use_store(uri)
    time.sleep(max(0.0, start_at - time.time()))
    p = register(model_uri, name, score, METRIC, KEY, cv_run_id="cv-run", who=f"racer-{score}")
    return p.version, p.promoted


def _race(store: Store, prefix: str, rounds: int) -> list[str]:
    """`rounds` rounds of two processes registering 0.90 and 0.80 at the same instant over a 0.50 champion."""
    failures = []
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2, initializer=_use_store, initargs=(store.uri,)) as pool:
        pool.map(time.sleep, [0.0, 0.0])  # both workers imported and warm before the first round
        for i in range(rounds):
            name = f"{prefix}-{os.getpid()}-{i}"
            _reg(store, name, 0.50)
            start = time.time() + 0.2
            results = pool.map(_race_worker, [(store.uri, store.model_uri, name, s, start) for s in (0.90, 0.80)],
                               chunksize=1)
            (v90, _), (v80, _) = results
            aliases = _aliases(name)
            if aliases.get(CHAMPION) != v90 or aliases.get(CANDIDATE) != max(v90, v80, key=int):
                failures.append(f"round {i}: champion v{aliases.get(CHAMPION)}, candidate v{aliases.get(CANDIDATE)}; "
                                f"0.90 is v{v90}, 0.80 is v{v80}")
    return failures


@pytest.mark.slow
def test_concurrent_registrations_sqlite(store):
    """Real processes on one SQLite store: the file lock serialises them; 0.90 wins every round.

    Control run (lock and re-check switched off, same harness): 0.90 won 3 of 20 rounds.
    """
    assert _race(store, "race-sqlite", RACES) == []


@pytest.mark.slow
def test_concurrent_registrations_http_server(http_store):
    """Over HTTP no file lock applies: the re-check after writing must make 0.90 win every round."""
    _use_store(http_store.uri)
    assert registry._sqlite_path(http_store.uri) is None
    assert _race(http_store, "race-http", HTTP_RACES) == []


def test_recheck_repairs_a_lost_update(store):
    """The interleaving the re-check exists for, made deterministic: a stale writer puts 0.80 over 0.90."""
    name = _name("lost-update")
    _reg(store, name, 0.50)
    v90 = _reg(store, name, 0.90).version
    v80 = _reg(store, name, 0.80).version
    client = MlflowClient()
    client.set_registered_model_alias(name, CHAMPION, v80)  # what the slower racer's write does
    assert registry._settle(client, name, v80, "racer") == v90
    assert _champion(name) == v90


# ---------------------------------------------------------------------------- human in the loop


def test_promote_rollback_and_history(store):
    name = _name("human")
    v = {s: _reg(store, name, s).version for s in (0.70, 0.80, 0.75, 0.90)}  # champions: 0.70, 0.80, 0.90
    assert _champion(name) == v[0.90]

    back = rollback(name, why="fails on real faces", who="alice@lab")
    assert (back.version, back.previous) == (v[0.80], v[0.90])
    assert "rolled back by alice@lab" in back.reason
    rows = {r.version: r for r in list_versions(name)}
    demoted = rows[v[0.90]].demoted
    assert demoted.startswith("rolled back by alice@lab at ") and demoted.endswith(": fails on real faces")
    assert rows[v[0.80]].tags["champion.why"] == f"rollback from v{v[0.90]}: fails on real faces"

    v85 = _reg(store, name, 0.85).version  # beats 0.80; the re-check must not bring back the rolled-back 0.90
    assert _champion(name) == v85

    chosen = promote(name, v[0.75], why="half the size", who="bob@lab")
    assert chosen.previous == v85 and set(chosen.passed_over) == {v[0.80], v85}
    assert _champion(name) == v[0.75]
    tags = MlflowClient().get_model_version(name, v[0.75]).tags
    assert (tags["champion.by"], tags["champion.why"]) == ("bob@lab", "half the size")
    assert _reg(store, name, 0.78).promoted  # beats the human's choice; passed-over ones stay out
    assert _champion(name) != v85

    assert rollback(name, why="keep the small one").version == v[0.75]
    assert rollback(name, why="back again").version == v85  # walks further back, clearing its demotion
    assert list_versions(name)[int(v85) - 1].demoted is None
    assert promote(name, v85, why="x").reason.endswith("is already champion; nothing changed")


def test_promote_and_rollback_refusals(store):
    name = _name("refuse")
    with pytest.raises(ModelNotFoundError, match=f"no registered model '{name}'"):
        promote(name, 1, why="x")
    _reg(store, name, 0.5)
    with pytest.raises(ModelNotFoundError, match=r"has no version 7 \(versions: 1\)"):
        promote(name, 7, why="x")
    with pytest.raises(RegistryError, match="needs a reason"):
        promote(name, 1, why="  ")
    with pytest.raises(RegistryError, match="no earlier champion"):
        rollback(name, why="x")


def test_list_versions_rows(store):
    name = _name("list")
    _reg(store, name, 0.5, who="carol@lab")
    _reg(store, name, 0.4, dataclasses.replace(KEY, protocol="paper"))
    rows = list_versions(name)
    assert [(r.version, r.aliases) for r in rows] == [("1", ("champion",)), ("2", ("candidate",))]
    assert rows[0].registered_by == "carol@lab" and rows[0].key == KEY and rows[0].score == 0.5
    assert rows[1].promotion.startswith("not comparable with champion v1")
    table = format_versions(rows).splitlines()
    assert table[0].split()[:3] == ["version", "aliases", "score"]
    assert table[1].startswith("v2") and "not comparable" in table[1]


def test_default_who_is_user_at_host(store):
    p = _reg(store, _name("who"), 0.5)
    who = MlflowClient().get_model_version(p.name, p.version).tags["registered_by"]
    assert who == f"{registry.default_who()}" and who.endswith("@" + socket.gethostname())


# ---------------------------------------------------------------------------- one-line errors


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and isinstance(exc_info.value, FeropsError)
    return message


def test_check_resolves_existing_aliases_versions_and_files(store, tmp_path):
    name = _name("resolve")
    _reg(store, name, 0.5)
    ref = check_model_uri(f"models:/{name}@{CHAMPION}")
    assert (ref.kind, ref.name, ref.version, ref.alias) == ("registry", name, "1", CHAMPION)
    assert check_model_uri(f"models:/{name}/1").version == "1"
    assert check_model_uri(f"models:/{name}/latest").version == "1"
    assert mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").predict(np.zeros((2, 4))).shape == (2, 3)
    keras_file = tmp_path / "model.keras"
    keras_file.write_bytes(b"x")
    assert check_model_uri(str(keras_file)).kind == "file"


def test_check_names_missing_model_alias_version_and_file(store, tmp_path):
    name = _name("missing")
    with pytest.raises(ModelNotFoundError) as exc:
        check_model_uri("models:/fer-emotion-nope@champion")
    msg = _one_line(exc)
    assert msg.startswith(f"models:/fer-emotion-nope@champion: no registered model 'fer-emotion-nope' in {store.uri}")
    assert "`make run`" in msg and "`ferops registry list`" in msg

    _reg(store, name, 0.5, dataclasses.replace(KEY, protocol="paper"))
    MlflowClient().delete_registered_model_alias(name, CHAMPION)
    with pytest.raises(ModelNotFoundError) as exc:
        check_model_uri(f"models:/{name}@champion")
    assert f"'{name}' has no alias 'champion'" in _one_line(exc) and "candidate=v1" in str(exc.value)
    with pytest.raises(ModelNotFoundError, match=r"has no version 3 .*\(versions: 1\)"):
        check_model_uri(f"models:/{name}/3")
    with pytest.raises(ModelNotFoundError) as exc:
        check_model_uri(str(tmp_path / "gone.keras"))
    assert _one_line(exc).startswith(f"{tmp_path / 'gone.keras'}: no such file")


def test_check_does_not_create_a_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    _use_store("sqlite:///mlflow.db")
    for call in (lambda: check_model_uri("models:/fer-emotion@champion"), lambda: list_versions("fer-emotion")):
        with pytest.raises(ModelNotFoundError) as exc:
            call()
        assert "no MLflow store at" in _one_line(exc) and str(tmp_path / "mlflow.db") in str(exc.value)
    assert not (tmp_path / "mlflow.db").exists()


def test_unreachable_server_fails_fast_in_one_line(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    _use_store(url)
    for call in (lambda: check_model_uri("models:/fer-emotion@champion"), lambda: list_versions("fer-emotion"),
                 lambda: promote("fer-emotion", 1, why="x"), lambda: registry.check_store(url)):
        started = time.monotonic()
        with pytest.raises(TrackingUnreachableError) as exc:
            call()
        assert time.monotonic() - started < 10
        msg = _one_line(exc)
        assert f"tracking server {url} unreachable (connection refused)" in msg and "MLFLOW_TRACKING_URI" in msg
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the fail-fast setting does not leak


def test_check_store_passes_reachable_and_local_stores(http_store, tmp_path):
    assert registry.check_store(http_store.uri) == http_store.uri
    local = f"sqlite:///{tmp_path / 'new.db'}"
    assert registry.check_store(local) == local and not (tmp_path / "new.db").exists()


def test_lock_serialises_and_is_released(store):
    """A second holder waits; a timeout is one line; after release the lock is free again."""
    with registry.registry_lock(store.uri) as lock:
        assert lock == Path(str(registry._sqlite_path(store.uri)) + ".registry.lock")
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            with pytest.raises(registry.RegistryLockTimeout) as exc:
                pool.apply(_hold_lock, (store.uri, 0.3))
            assert "held the registry lock" in _one_line(exc)
    with registry.registry_lock(store.uri, timeout=0.3):
        pass


def _hold_lock(uri: str, timeout: float) -> None:
    with registry.registry_lock(uri, timeout=timeout):
        pass


def test_versions_and_the_model_carry_the_evidence_as_descriptions(store):
    name = _name("described")
    with mlflow.start_run() as cv_run:  # the CV run the description links to
        pass
    first = register(store.model_uri, name, 5 / 6, METRIC, KEY, cv_run_id=cv_run.info.run_id)
    worse = register(store.model_uri, name, 0.5, METRIC, KEY, cv_run_id=cv_run.info.run_id)
    client = MlflowClient()
    text = client.get_model_version(name, first.version).description
    assert f"**{METRIC} = 0.8333**" in text  # 4 significant digits, not 0.8333333333333334
    link = f"(#/experiments/{cv_run.info.experiment_id}/runs/{cv_run.info.run_id}?workflowType=machine_learning)"
    assert link in text and KEY.data_hash in text and "protocol `subject`" in text
    assert first.reason in text
    assert "does not beat champion v1" in client.get_model_version(name, worse.version).description
    model = client.get_registered_model(name).description
    assert model.startswith(f"Champion: **v{first.version}**") and "0.8333" in model
