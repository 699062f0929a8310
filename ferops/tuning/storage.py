"""Optuna storage from one URL in params.yaml.

- `sqlite:///optuna.db` (default): one file, fine for one or a few worker processes;
- `journal:PATH`: Optuna's append-only journal file, the recommended store for
  many processes on one machine (no database locks);
- any SQLAlchemy URL (`postgresql+psycopg2://user@host/db`): workers on several machines.
RDB storages get a heartbeat: a trial whose worker goes silent for 3 heartbeats is
marked failed and retried once (RetryHeartbeatStaleTrialCallback). Worker processes started
by `ferops tune` are also watched by their parent, which fails a dead worker's
trial at once on every storage kind (ferops.tuning.study).
"""

from __future__ import annotations

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend


def open_storage(url: str, heartbeat_s: int) -> optuna.storages.BaseStorage:
    if url.startswith("journal:"):
        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_s, grace_period=3 * heartbeat_s,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
