"""Whether the tracking server answers, found out in seconds and said in one line.

Below both the store (ferops.tracking.store.configure checks first) and the
registry policy (ferops.tracking.registry wraps its requests): neither the
store nor anything under it should import registry policy to learn that a
server is down.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Iterator

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ferops.errors import FeropsError

# Interactive checks must fail in seconds; MLflow's defaults (7 retries with backoff, 120 s timeout)
# keep `ferops predict` against a dead server busy for minutes.
FAIL_FAST_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class TrackingUnreachableError(FeropsError, ConnectionError):
    """The tracking/registry server did not answer."""


@contextlib.contextmanager
def fail_fast_http() -> Iterator[None]:
    """MLflow HTTP calls inside this block give up after one attempt and 10 s instead of ~4 minutes.

    MLflow reads these variables on every request (mlflow.utils.rest_utils.http_request), so setting
    them for the block is enough. Not thread-safe: meant for CLI-level checks.
    """
    saved = {k: os.environ.get(k) for k in FAIL_FAST_ENV}
    os.environ.update(FAIL_FAST_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def connection_failure(exc: BaseException) -> str | None:
    """'connection refused' / 'no answer in time' / ... when the server never answered, else None.

    MLflow wraps transport errors as MlflowException("API request to URL failed with [timeout]
    exception ..."); error *responses* (4xx/5xx) read differently and are not unreachability.
    """
    import requests

    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and all(e is not c for c in chain):
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = " ".join(str(c) for c in chain)
    transport = any(isinstance(c, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                                   ConnectionError)) for c in chain)
    wrapped = bool(re.match(r"API request to \S+ failed with (timeout )?exception", text))
    if not (transport or wrapped):
        return None
    if "Connection refused" in text:
        return "connection refused"
    if any(isinstance(c, requests.exceptions.Timeout) for c in chain) or "timed out" in text or "timeout" in text:
        return "no answer in time"
    if "Name or service not known" in text or "getaddrinfo" in text or "nodename" in text:
        return "host name not found"
    return "connection failed"


@contextlib.contextmanager
def store_errors(what: str, store: str) -> Iterator[None]:
    """An unreachable server becomes one line naming the URI and the fix, not a retry traceback."""
    try:
        yield
    except MlflowException as exc:
        why = connection_failure(exc)
        if why is None:
            raise
        raise TrackingUnreachableError(
            f"{what}: tracking server {store} unreachable ({why}); start it (`mlflow server ...`) "
            f"or point MLFLOW_TRACKING_URI (or params.yaml tracking.tracking_uri) at a reachable store"
        ) from None


def check_store(uri: str | None = None) -> str:
    """Fail in seconds, in one line, when the tracking server at `uri` (default: current) does not answer.

    For `store.configure()` to call first: its own lookups would retry for minutes against a dead
    server before any friendlier check ran. Local stores pass through (configure creates them).
    """
    uri = uri or mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        with fail_fast_http(), store_errors(uri, uri):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    return uri
