"""Registry policy: every new model is `candidate`; it becomes `champion` only on comparable evidence.

Downstream users pull `models:/<name>@champion`, so the alias moves only when a
model's cross-validated score beats the champion's on the same footing - never
because it is newer, and never across footings: a score on other data, another
split protocol, another class set or another metric is not evidence. That
footing is the ComparabilityKey, stored on every version as tags.

The rules, in the order they are applied:

- An empty registry (no champion alias yet) takes its first model as champion.
- A champion with a different key (or no key: registered before ferops recorded
  one) is never replaced automatically; the new version stays candidate and its
  `promotion` tag says why ("not comparable with champion v3 ...: protocol
  paper != subject"). A human decides with `promote`.
- Otherwise the new version is champion iff its score is strictly better: a tie
  is not evidence.

Invariant kept by every operation: the champion is the best-scoring version of
its key among complete, non-demoted versions (ties keep the sitting champion).
Complete = carries every REQUIRED_TAGS entry. Demoted = a human rolled it back
or passed it over with `promote`/`rollback`, so automatic repair never brings
back what a person rejected.

Crash safety: a version is created together with its complete tag set (one
`create_model_version` call, one database transaction), and aliases move only
afterwards. A version without the full set (registered by hand, or by older
code that crashed between creating the version and tagging it) is flagged by
`list_versions` and can never become champion.

Concurrency: registrations serialise on a file lock beside a local SQLite store
(fcntl.flock: released by the kernel if the process dies, so no stale locks).
On a shared server a file lock protects nothing, so after moving an alias every
registration re-reads the registry and repairs the champion to the invariant
(compare-and-set by re-check): of two racing registrations, the one that writes
last always sees the other's complete tags, since tags exist before any alias.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ferops.errors import FeropsError
from ferops.tracking.reachability import (  # noqa: F401 (re-exported: callers import these from here)
    TrackingUnreachableError,
    check_store,
    fail_fast_http,
    store_errors as _store_errors,
)

CANDIDATE = "candidate"
CHAMPION = "champion"

# Version tags. The key fields name what a score was measured on; the rest is the evidence itself.
KEY_TAGS = {f: f"key.{f}" for f in ("task", "dataset", "data_hash", "protocol", "classes")}
SCORE, METRIC, HIGHER_IS_BETTER = "score", "score.metric", "score.higher_is_better"
CV_RUN_ID, PROMOTION = "cv_run_id", "promotion"
REQUIRED_TAGS = (*KEY_TAGS.values(), SCORE, METRIC, HIGHER_IS_BETTER, CV_RUN_ID, PROMOTION)
REGISTERED_BY, REGISTERED_AT = "registered_by", "registered_at"
DEMOTED = "demoted"  # set by a human decision: never made champion again automatically
CHAMPION_BY, CHAMPION_AT, CHAMPION_WHY = "champion.by", "champion.at", "champion.why"
# Registered-model tag: the stack of champions (JSON), which `rollback` pops.
HISTORY = "champion_history"
HISTORY_KEEP = 100

LOCK_TIMEOUT_S = 120.0
_REPAIR_ROUNDS = 5


class RegistryError(FeropsError):
    """A registry request that cannot be carried out as asked (message names the model and the fix)."""


class ModelNotFoundError(RegistryError, LookupError):
    """The model, version, alias, file or store a URI names does not exist."""


class RegistryLockTimeout(RegistryError, TimeoutError):
    """Another process held the registry lock for longer than LOCK_TIMEOUT_S."""


# ---------------------------------------------------------------------------- comparability


@dataclass(frozen=True)
class ComparabilityKey:
    """What a score was measured on. Two scores are comparable only if every field is equal.

    `classes` is a set (stored sorted): the same classes in another output order are still the
    same evaluation. `data_hash` is the DVC content hash of the data CV read
    (ferops.tracking.lineage.data_hash), so an edited dataset is another footing even under the
    same name.
    """

    task: str
    dataset: str
    data_hash: str
    protocol: str
    classes: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(sorted(str(c) for c in self.classes)))
        for name in KEY_TAGS:
            if not getattr(self, name):
                raise RegistryError(f"comparability key: {name} is empty; "
                                    f"every field names what a score was measured on")

    def as_tags(self) -> dict[str, str]:
        values = {**{f: str(getattr(self, f)) for f in KEY_TAGS if f != "classes"},
                  "classes": json.dumps(list(self.classes))}
        return {KEY_TAGS[f]: v for f, v in values.items()}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ComparabilityKey | None:
        """The key stored on a version or run, or None when any field is missing or unreadable."""
        try:
            values = {f: tags[t] for f, t in KEY_TAGS.items()}
            values["classes"] = tuple(json.loads(values["classes"]))
            return cls(**values)
        except (KeyError, ValueError, TypeError, RegistryError):
            return None

    def differences(self, other: ComparabilityKey) -> list[str]:
        """Human-readable differences, `self` first: ["protocol paper != subject", ...]."""
        out = []
        for f in ("task", "dataset", "data_hash", "protocol"):
            a, b = getattr(self, f), getattr(other, f)
            if a != b:
                out.append(f"{f} {_short(a)} != {_short(b)}" if f == "data_hash" else f"{f} {a} != {b}")
        if self.classes != other.classes:
            here = ", ".join(sorted(set(self.classes) - set(other.classes))) or "-"
            there = ", ".join(sorted(set(other.classes) - set(self.classes))) or "-"
            out.append(f"classes differ (only here: {here}; only there: {there})")
        return out


def _short(data_hash: str) -> str:
    return data_hash[:12] + ("…" if len(data_hash) > 12 else "")


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Promotion:
    """Outcome of `register`: the version, whether it holds champion now, and why (also its `promotion` tag)."""

    name: str
    version: str
    score: float
    metric: str
    champion_version: str | None  # the champion it was judged against, if any
    champion_score: float | None
    promoted: bool
    reason: str


@dataclass(frozen=True)
class VersionRow:
    """One registered version as `ferops registry list` shows it."""

    name: str
    version: str
    aliases: tuple[str, ...]
    score: float | None
    metric: str | None
    higher_is_better: bool
    key: ComparabilityKey | None
    promotion: str
    missing: tuple[str, ...]  # REQUIRED_TAGS entries absent (or unreadable)
    demoted: str | None
    registered_by: str | None
    created: str  # UTC, ISO 8601
    run_id: str | None
    cv_run_id: str | None
    tags: dict[str, str] = field(repr=False, compare=False, default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def flags(self) -> tuple[str, ...]:
        out = []
        if len(self.missing) == len(REQUIRED_TAGS):
            out.append("incomplete: no registration tags (registered outside `ferops`, or by a crashed older ferops)")
        elif self.missing:
            out.append(f"incomplete: missing tags {', '.join(self.missing)}")
        if self.demoted:
            out.append(f"demoted: {self.demoted}")
        return tuple(out)

    @property
    def decision(self) -> str | None:
        """The last human decision that made this version champion (promote / rollback), if any."""
        if not self.tags.get(CHAMPION_WHY):
            return None
        by, at = self.tags.get(CHAMPION_BY), self.tags.get(CHAMPION_AT)
        return f"made champion by {by} at {at}: {self.tags[CHAMPION_WHY]}"

    def differences(self, other: VersionRow) -> list[str]:
        """Why this version's score cannot be compared with `other`'s ([] = comparable)."""
        if other.key is None or not other.complete:
            return [f"v{other.version} has no complete comparability tags"]
        if self.key is None:
            return [f"v{self.version} has no complete comparability tags"]
        out = self.key.differences(other.key)
        if self.metric != other.metric:
            out.append(f"metric {self.metric} != {other.metric}")
        if self.higher_is_better != other.higher_is_better:
            out.append("higher_is_better differs")
        return out

    def beats(self, other: VersionRow) -> bool:
        """Strictly better score (same metric assumed: check `differences` first)."""
        return self.score > other.score if self.higher_is_better else self.score < other.score


@dataclass(frozen=True)
class ChampionChange:
    """Outcome of `promote` / `rollback`; `reason` is the one line the CLI prints."""

    name: str
    version: str
    previous: str | None
    action: str
    who: str
    why: str
    passed_over: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class ModelRef:
    """What `check_model_uri` found behind a URI (a file, a registered version, a logged model, a run)."""

    uri: str
    kind: str  # "file" | "registry" | "logged-model" | "run" | "other"
    store: str | None = None
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    path: Path | None = None


# ---------------------------------------------------------------------------- helpers


def default_who() -> str:
    """`user@host`: who made a registry decision, for the tags a reviewer reads later."""
    try:
        user = getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (some containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fmt(a: float, b: float | None = None) -> str:
    """`a` with 4 decimals, or as many more as it takes to tell it from `b` (0.83333 vs 0.83334)."""
    for digits in range(4, 18):
        if b is None or f"{a:.{digits}f}" != f"{b:.{digits}f}":
            return f"{a:.{digits}f}"
    return repr(a)


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` store (relative to the working directory, like MLflow), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _store_uri() -> str:
    return mlflow.get_registry_uri()


def _require_store(what: str, store: str) -> None:
    """A lookup must not create an empty SQLite store where none exists (MLflow would, silently)."""
    path = _sqlite_path(store)
    if path is not None and not path.exists():
        raise ModelNotFoundError(
            f"{what}: no MLflow store at {path.resolve()} ({store}); run `make run` (or `dvc repro`) to train "
            f"and register a model there, or set MLFLOW_TRACKING_URI to the store that holds it"
        )


def _not_found(exc: MlflowException) -> bool:
    return exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def _missing_model_error(client: MlflowClient, what: str, name: str, store: str) -> ModelNotFoundError:
    try:
        others = sorted(m.name for m in client.search_registered_models(max_results=20))
    except MlflowException:
        others = []
    here = f" (registered here: {', '.join(others)})" if others else " (none registered here yet)"
    return ModelNotFoundError(
        f"{what}: no registered model '{name}' in {store}{here}; run `make run` (or `dvc repro`) to train "
        f"and register one; `ferops registry list` shows what exists"
    )


@contextlib.contextmanager
def registry_lock(store: str | None = None, timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path | None]:
    """Exclusive lock for registry decisions on a local SQLite store: `<db>.registry.lock` beside it.

    Yields the lock path, or None for stores a file lock cannot protect (HTTP, databases), where
    the re-check in `register` does the work. flock is advisory and per open file, held until
    release or process exit, so a crashed holder never leaves the registry locked.
    """
    store = store or _store_uri()
    db = _sqlite_path(store)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: rely on the re-check alone
        fcntl = None
    if db is None or fcntl is None:
        yield None
        return
    lock = db.with_name(db.name + ".registry.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RegistryLockTimeout(
                        f"{lock}: another ferops process held the registry lock for over {timeout:.0f} s; "
                        f"wait for it to finish (see `ps`), then retry"
                    ) from None
                time.sleep(0.02)
        try:
            yield lock
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _row(name: str, mv, aliases: dict[str, str]) -> VersionRow:
    tags = dict(mv.tags or {})
    version = str(mv.version)
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    key = ComparabilityKey.from_tags(tags)
    if key is None:
        missing += [t for t in KEY_TAGS.values() if t not in missing]
    try:
        score = float(tags[SCORE])
    except (KeyError, ValueError):
        score = None
    if score is None or not math.isfinite(score):
        score = None
        missing.append(SCORE)
    if tags.get(HIGHER_IS_BETTER) not in (None, "", "true", "false"):
        missing.append(HIGHER_IS_BETTER)
    created = datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, timezone.utc)
    return VersionRow(
        name=name,
        version=version,
        aliases=tuple(sorted(a for a, v in aliases.items() if str(v) == version)),
        score=score,
        metric=tags.get(METRIC),
        higher_is_better=tags.get(HIGHER_IS_BETTER, "true") != "false",
        key=key,
        promotion=tags.get(PROMOTION, ""),
        missing=tuple(t for t in REQUIRED_TAGS if t in set(missing)),
        demoted=tags.get(DEMOTED) or None,
        registered_by=tags.get(REGISTERED_BY),
        created=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        run_id=mv.run_id or None,
        cv_run_id=tags.get(CV_RUN_ID),
        tags=tags,
    )


def _check_name(name: str) -> None:
    if not name or "'" in name:
        raise RegistryError(f"registered model name {name!r}: must be non-empty and contain no single quote")


def _snapshot(client: MlflowClient, name: str) -> tuple[list[VersionRow], dict[str, str], list[dict]]:
    """All versions (ascending), the aliases and the champion history; MlflowException if the model is absent."""
    model = client.get_registered_model(name)
    aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
    versions, token = [], None
    while True:
        page = client.search_model_versions(f"name='{name}'", page_token=token)
        versions += list(page)
        token = page.token
        if not token:
            break
    rows = sorted((_row(name, mv, aliases) for mv in versions), key=lambda r: int(r.version))
    try:
        history = json.loads((model.tags or {}).get(HISTORY, "[]"))
    except ValueError:
        history = []
    return rows, aliases, [h for h in history if isinstance(h, dict) and "version" in h]


def _push_history(client: MlflowClient, name: str, history: list[dict], version: str, who: str, why: str) -> list[dict]:
    """Append a champion to the stack (read-modify-write: serialised by the lock on SQLite)."""
    history = [*history, {"version": str(version), "at": _now(), "who": who, "why": why}][-HISTORY_KEEP:]
    client.set_registered_model_tag(name, HISTORY, json.dumps(history))
    return history


def _set_alias(client: MlflowClient, name: str, alias: str, version: str) -> None:
    """Every alias move goes through here (one place to see them, and to inject a crash in tests)."""
    client.set_registered_model_alias(name, alias, str(version))


def _best(peers: list[VersionRow], sitting: VersionRow) -> VersionRow:
    """Best score among comparable peers; a tie keeps the sitting champion, else goes to the earliest version."""
    pool = [*peers, sitting] if all(p is not sitting for p in peers) else peers
    pick = max if sitting.higher_is_better else min
    top = pick(r.score for r in pool)
    tied = [r for r in pool if r.score == top]
    return sitting if any(r is sitting for r in tied) else min(tied, key=lambda r: int(r.version))


# ---------------------------------------------------------------------------- register


def _decide(champion: VersionRow | None, mine: VersionRow) -> tuple[bool, str]:
    if champion is None:
        return True, f"first comparable model: no champion yet, {_fmt(mine.score)} ({mine.metric}) becomes champion"
    diffs = mine.differences(champion)
    if diffs:
        return False, (f"not comparable with champion v{champion.version} (this != champion): {'; '.join(diffs)}; "
                       f"`ferops registry promote {mine.name} VERSION` switches champion by hand")
    a, b = _fmt(mine.score, champion.score), _fmt(champion.score, mine.score)
    if mine.beats(champion):
        return True, f"{a} beats champion v{champion.version} {b} ({mine.metric})"
    return False, f"{a} does not beat champion v{champion.version} {b} ({mine.metric})"


def register(model_uri: str, name: str, score: float, metric: str, key: ComparabilityKey,
             tags: dict | None = None, *, cv_run_id: str | None = None, who: str | None = None,
             higher_is_better: bool = True, rule: str | None = None) -> Promotion:
    """Register `model_uri` as a new version of `name`: always `candidate`, `champion` on comparable evidence.

    `score` is the `metric` measured by the CV run `cv_run_id` (or `tags["cv_run_id"]`) on `key`.
    Extra `tags` are stored on the version too (they cannot override the evidence tags).
    `rule`: champion by a stated rule instead of by score (the serving bundle follows the champions it
    bundles); the rule is the promotion reason. The returned Promotion reflects the registry after
    concurrent registrations settled: `promoted` is True only if this version holds champion now.
    """
    _check_name(name)
    reserved = {DEMOTED, CHAMPION_BY, CHAMPION_AT, CHAMPION_WHY}  # human decisions, not registration inputs
    tags = {str(k): str(v) for k, v in (tags or {}).items() if k not in reserved}
    cv_run_id = cv_run_id or tags.get(CV_RUN_ID)
    if not cv_run_id:
        raise RegistryError(f"{name}: register needs the cv_run_id of the run that measured {metric}; "
                            f"pass cv_run_id= (the CV parent run)")
    score = float(score)
    if not math.isfinite(score):
        raise RegistryError(f"{name}: {metric} is {score}; a model without a finite score has no evidence, "
                            f"fix the CV run")
    who = who or default_who()
    client = MlflowClient()
    store = _store_uri()
    with registry_lock(store), _store_errors(f"models:/{name}", store):
        try:
            rows, aliases, history = _snapshot(client, name)
        except MlflowException as exc:
            if not _not_found(exc):
                raise
            rows, aliases, history = [], {}, []
        champion = next((r for r in rows if r.version == aliases.get(CHAMPION)), None)
        evidence = {**tags, **key.as_tags(), SCORE: repr(score), METRIC: metric,
                    HIGHER_IS_BETTER: str(bool(higher_is_better)).lower(), CV_RUN_ID: cv_run_id,
                    REGISTERED_BY: who, REGISTERED_AT: _now()}
        draft = VersionRow(name=name, version="new", aliases=(), score=score, metric=metric,
                           higher_is_better=higher_is_better, key=key, promotion="", missing=(), demoted=None,
                           registered_by=who, created=_now(), run_id=None, cv_run_id=cv_run_id)
        promote_it, reason = (True, rule) if rule else _decide(champion, draft)
        # One call creates the version WITH its complete tag set (one transaction); aliases move after.
        version = str(mlflow.register_model(model_uri, name, tags={**evidence, PROMOTION: reason}).version)
        _set_alias(client, name, CANDIDATE, version)
        if promote_it:
            _set_alias(client, name, CHAMPION, version)
            _push_history(client, name, history, version, who, reason)
        holder = version if rule else _settle(client, name, version, who)  # a rule's champion is not re-judged
        if promote_it and holder != version:
            reason = f"{reason}; then v{holder} took champion: a better comparable score registered concurrently"
            client.set_model_version_tag(name, version, PROMOTION, reason)
        describe_version(client, name, version, score, metric, key, reason, cv_run_id, holder)
    return Promotion(name, version, score, metric, champion.version if champion else None,
                     champion.score if champion else None, holder == version, reason)


def describe_version(client: MlflowClient, name: str, version: str, score: float, metric: str,
                     key: ComparabilityKey, reason: str, cv_run_id: str, champion: str | None) -> None:
    """The evidence as the version's (and, for the champion, the model's) description: the UI shows it first.

    Tags hold the same facts for code; a description is what a person reads on the version page,
    with the CV run as a link (relative, so it opens on whichever host serves the UI).
    """
    from ferops.tracking.run_record import sig4

    try:
        experiment_id = client.get_run(cv_run_id).info.experiment_id
        cv_link = f"[CV run {cv_run_id[:8]}](#/experiments/{experiment_id}/runs/{cv_run_id}?workflowType=machine_learning)"
    except MlflowException:
        cv_link = f"CV run `{cv_run_id}` (not in this store)"
    text = (f"**{metric} = {sig4(score)}**, measured by {cv_link}\n\n"
            f"- comparability key: task `{key.task}`, dataset `{key.dataset}`, data `{key.data_hash}`, "
            f"protocol `{key.protocol}`, {len(key.classes)} classes\n"
            f"- promotion: {reason}\n")
    client.update_model_version(name, version, description=text)
    if champion == version:
        client.update_registered_model(name, description=f"Champion: **v{version}** (`models:/{name}@champion`). "
                                                         f"{text}")


def _settle(client: MlflowClient, name: str, mine: str, who: str) -> str | None:
    """Re-read and repair: candidate = newest complete version; champion = best of its key. Returns the champion.

    This is the compare-and-set half of the concurrency story: whichever registration moved an
    alias last runs this after its own write and sees every competitor's tags (written at creation,
    before their aliases), so the final state is the same whatever the interleaving.
    """
    holder = None
    for _ in range(_REPAIR_ROUNDS):
        rows, aliases, history = _snapshot(client, name)
        complete = [r for r in rows if r.complete]
        newest = max((int(r.version) for r in complete), default=int(mine))
        if int(aliases.get(CANDIDATE, 0)) < newest:
            _set_alias(client, name, CANDIDATE, str(newest))
            continue
        by_version = {r.version: r for r in rows}
        champion = by_version.get(aliases.get(CHAMPION, ""))
        holder = champion.version if champion else None
        if champion is None or not champion.complete:
            return holder  # no champion, or one from before keys existed: only a human moves it
        peers = [r for r in complete if not r.demoted and not r.differences(champion)]
        best = _best(peers, champion)
        if best is champion:
            return holder
        _set_alias(client, name, CHAMPION, best.version)
        _push_history(client, name, history, best.version, who,
                      f"re-check: v{best.version} {_fmt(best.score)} is the best comparable score, "
                      f"v{champion.version} {_fmt(champion.score)} held champion after a concurrent registration")
    return holder


# ---------------------------------------------------------------------------- human in the loop


def _client(what: str, store: str) -> MlflowClient:
    """A client for an existing store only: constructing one would create an empty SQLite database."""
    _require_store(what, store)
    return MlflowClient()


def _load(client: MlflowClient, name: str, what: str, store: str):
    _check_name(name)
    try:
        return _snapshot(client, name)
    except MlflowException as exc:
        if _not_found(exc):
            raise _missing_model_error(client, what, name, store) from None
        raise


def list_versions(name: str) -> list[VersionRow]:
    """Every version of `name`, oldest first, with aliases, score, key, promotion reason and flags."""
    store = _store_uri()
    client = _client(f"models:/{name}", store)
    with fail_fast_http(), _store_errors(f"models:/{name}", store):
        rows, _, _ = _load(client, name, f"models:/{name}", store)
    return rows


def format_versions(rows: list[VersionRow]) -> str:
    """A plain-text table, newest first, for `ferops registry list`."""
    if not rows:
        return "no versions"
    header = ("version", "aliases", "score", "metric", "dataset", "protocol", "data", "classes", "registered",
              "notes")
    table = [header]
    for r in reversed(rows):
        k = r.key
        table.append((
            f"v{r.version}", ",".join(r.aliases) or "-", _fmt(r.score) if r.score is not None else "-",
            r.metric or "-", k.dataset if k else "-", k.protocol if k else "-", _short(k.data_hash) if k else "-",
            str(len(k.classes)) if k else "-", f"{r.created} {r.registered_by or ''}".strip(),
            " | ".join(n for n in (*r.flags, r.decision, r.promotion) if n) or "-",
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row, widths)), row[-1]]).rstrip() for row in table)


def _pass_over(client: MlflowClient, name: str, rows: list[VersionRow], chosen: VersionRow, exclude: set[str],
               note: str) -> tuple[str, ...]:
    """Demote complete versions of the chosen one's key that score better: the human chose against them."""
    passed = [r for r in rows if r.complete and not r.demoted and r.version != chosen.version
              and r.version not in exclude and not r.differences(chosen) and r.beats(chosen)]
    for r in passed:
        client.set_model_version_tag(name, r.version, DEMOTED, note)
    return tuple(r.version for r in passed)


def _crown(client: MlflowClient, name: str, chosen: VersionRow, who: str, why: str, stamp: str) -> None:
    """Tags first, alias last: a crash in between leaves the human's decision recorded, not half-applied."""
    if chosen.demoted:
        client.delete_model_version_tag(name, chosen.version, DEMOTED)
    for key, value in {CHAMPION_BY: who, CHAMPION_AT: stamp, CHAMPION_WHY: why}.items():
        client.set_model_version_tag(name, chosen.version, key, value)
    _set_alias(client, name, CHAMPION, chosen.version)


def _require_why(why: str, action: str) -> str:
    why = " ".join(str(why or "").split())
    if not why:
        raise RegistryError(f"{action} needs a reason (--why): it is recorded on the version with who and when")
    return why


def promote(name: str, version: str | int, why: str, who: str | None = None) -> ChampionChange:
    """Make `version` champion by hand. Refuses incomplete versions (no evidence to stand on).

    Comparable versions that score better are tagged `demoted` ("passed over"), so the automatic
    re-check never undoes this decision; promoting one of them later clears its tag.
    """
    why, who, version = _require_why(why, "promote"), who or default_who(), str(version).lstrip("v")
    store, what = _store_uri(), f"models:/{name}/{version}"
    client = _client(what, store)
    with fail_fast_http(), registry_lock(store), _store_errors(what, store):
        rows, aliases, history = _load(client, name, what, store)
        by_version = {r.version: r for r in rows}
        chosen = by_version.get(version)
        if chosen is None:
            raise ModelNotFoundError(f"{what}: '{name}' has no version {version} "
                                     f"(versions: {', '.join(r.version for r in rows) or 'none'}); "
                                     f"`ferops registry list` shows them")
        if not chosen.complete:
            raise RegistryError(f"{what}: v{version} is incomplete (missing tags: {', '.join(chosen.missing)}): its "
                                f"registration never finished, so there is no evidence to promote it on; register "
                                f"the model again (`dvc repro register`)")
        previous = aliases.get(CHAMPION)
        if previous == version:
            return ChampionChange(name, version, previous, "promote", who, why, (),
                                  f"{name} v{version} is already champion; nothing changed")
        stamp = _now()
        passed = _pass_over(client, name, rows, chosen, set(),
                            f"passed over: v{version} made champion by {who} at {stamp}: {why}")
        _crown(client, name, chosen, who, why, stamp)
        _push_history(client, name, history, version, who, f"promoted by hand: {why}")
    extra = f"; demoted better-scoring v{', v'.join(passed)} (passed over)" if passed else ""
    return ChampionChange(name, version, previous, "promote", who, why, passed,
                          f"{name} v{version} is champion (was {'v' + previous if previous else 'none'}): "
                          f"promoted by {who}: {why}{extra}")


def rollback(name: str, why: str, who: str | None = None) -> ChampionChange:
    """Give champion back to the previous champion (the history stack is popped); the current one is demoted.

    Repeated rollbacks walk further back. The restored champion is treated like a manual promotion:
    better-scoring comparable versions are passed over, so the re-check keeps the rollback.
    """
    why, who = _require_why(why, "rollback"), who or default_who()
    store, what = _store_uri(), f"models:/{name}@{CHAMPION}"
    client = _client(what, store)
    with fail_fast_http(), registry_lock(store), _store_errors(what, store):
        rows, aliases, history = _load(client, name, what, store)
        by_version = {r.version: r for r in rows}
        current = aliases.get(CHAMPION)
        if current is None:
            raise RegistryError(f"{what}: '{name}' has no champion to roll back; "
                                f"`ferops registry promote {name} VERSION` sets one")
        stack = list(history)
        while stack and stack[-1]["version"] == current:
            stack.pop()
        while stack and not (stack[-1]["version"] in by_version and by_version[stack[-1]["version"]].complete):
            stack.pop()  # deleted or incomplete versions cannot take over
        if not stack:
            raise RegistryError(f"{what}: no earlier champion of '{name}' is recorded to roll back to from "
                                f"v{current}; `ferops registry promote {name} VERSION` chooses one by hand")
        target = by_version[stack[-1]["version"]]
        stamp = _now()
        client.set_model_version_tag(name, current, DEMOTED, f"rolled back by {who} at {stamp}: {why}")
        passed = _pass_over(client, name, rows, target, {current},
                            f"passed over: rollback to v{target.version} by {who} at {stamp}: {why}")
        _crown(client, name, target, who, f"rollback from v{current}: {why}", stamp)
        client.set_registered_model_tag(name, HISTORY, json.dumps(stack))
    extra = f"; demoted better-scoring v{', v'.join(passed)} (passed over)" if passed else ""
    return ChampionChange(name, target.version, current, "rollback", who, why, passed,
                          f"{name} v{target.version} is champion again (v{current} rolled back by {who}: {why}){extra}")


# ---------------------------------------------------------------------------- model URIs

_MODELS_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))?/?")
_RUNS_URI = re.compile(r"runs:/(?P<run_id>[^/]+)(?:/.*)?")


def check_model_uri(uri: str) -> ModelRef:
    """What `ferops.predict.load_model` calls before loading: does `uri` name something that exists?

    Returns what it found; raises a one-line ModelNotFoundError /
    TrackingUnreachableError otherwise (naming the URI and the fix), within seconds.

    Handles local paths (`.keras` files, model folders, `file://`), `models:/NAME@ALIAS`,
    `models:/NAME/VERSION`, `models:/NAME/latest`, `models:/m-<id>` (logged models) and `runs:/`.
    Other schemes (s3://, ...) are passed through unchecked.
    """
    if uri.startswith("file://") or ("://" not in uri and not uri.startswith(("models:/", "runs:/"))):
        path = Path(uri[len("file://"):] if uri.startswith("file://") else uri)
        if not path.exists():
            raise ModelNotFoundError(
                f"{uri}: no such file; pass an existing .keras file or a registry URI such as "
                f"models:/fer-emotion@champion (`ferops registry list` shows what is registered)"
            )
        return ModelRef(uri, "file", path=path)
    if not uri.startswith(("models:/", "runs:/")):
        return ModelRef(uri, "other")
    store = _store_uri()
    client = _client(uri, store)
    with fail_fast_http(), _store_errors(uri, store):
        runs = _RUNS_URI.fullmatch(uri)
        if runs:
            try:
                client.get_run(runs["run_id"])
            except MlflowException as exc:
                if _not_found(exc) or "not found" in str(exc).lower():
                    raise ModelNotFoundError(f"{uri}: no run {runs['run_id']} in {store}; check the run id in the "
                                             f"MLflow UI or use models:/NAME@champion") from None
                raise
            return ModelRef(uri, "run", store)
        m = _MODELS_URI.fullmatch(uri)
        if not m:
            raise ModelNotFoundError(f"{uri}: not a model URI; use models:/NAME@ALIAS, models:/NAME/VERSION "
                                     f"or a path to a .keras file")
        name, alias, version = m["name"], m["alias"], m["version"]
        if name.startswith("m-") and not alias and not version:
            try:
                client.get_logged_model(name)
            except MlflowException as exc:
                if _not_found(exc):
                    raise ModelNotFoundError(f"{uri}: no logged model {name} in {store}; use models:/NAME@champion "
                                             f"(`ferops registry list` shows registered versions)") from None
                raise
            return ModelRef(uri, "logged-model", store, name=name)
        try:
            model = client.get_registered_model(name)
        except MlflowException as exc:
            if _not_found(exc):
                raise _missing_model_error(client, uri, name, store) from None
            raise
        aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
        if alias is not None:
            if alias not in aliases:
                known = ", ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())) or "none"
                hint = (" (no version has beaten the promotion rule yet: see the promotion notes in "
                        "`ferops registry list`)" if alias == CHAMPION else "")
                raise ModelNotFoundError(f"{uri}: '{name}' has no alias '{alias}' in {store}{hint} (aliases: {known}); "
                                         f"`ferops registry promote {name} VERSION` sets champion, "
                                         f"`ferops registry list` shows the versions")
            return ModelRef(uri, "registry", store, name, aliases[alias], alias)
        if version is None or version == "latest":
            found = client.search_model_versions(f"name='{name}'")
            if not found:
                raise ModelNotFoundError(f"{uri}: '{name}' has no versions in {store}; run `make run` (or `dvc repro`) "
                                         f"to register one")
            return ModelRef(uri, "registry", store, name, str(max(int(v.version) for v in found)))
        if version.isdigit():
            try:
                client.get_model_version(name, version)
            except MlflowException as exc:
                if _not_found(exc):
                    have = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
                    raise ModelNotFoundError(f"{uri}: '{name}' has no version {version} in {store} "
                                             f"(versions: {', '.join(map(str, have)) or 'none'}); "
                                             f"`ferops registry list` shows them") from None
                raise
            return ModelRef(uri, "registry", store, name, version)
        return ModelRef(uri, "registry", store, name)  # a legacy stage name: MLflow resolves it
