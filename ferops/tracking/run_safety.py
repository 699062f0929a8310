"""Every run ends with the truth about its process: KILLED when interrupted, FAILED when the process died.

MLflow closes a run only if its process lives to do it. Ctrl-C inside
TensorFlow used to end in a forty-line traceback and a FAILED run; SIGKILL,
the OOM killer or a reboot left folds RUNNING forever, so the UI showed
experiments "in progress" that nobody was running. Three pieces fix that:

- `ProcessRunContext` tags every run with the process that owns it
  (`ferops.pid`, `ferops.host`, `ferops.pid_start`), so a later process can tell
  a live run from an orphan even when the pid has been reused;
- `install_interrupt_handlers` turns SIGINT/SIGTERM into a clean exit
  (130/143, one line on stderr) and marks the runs that were active KILLED;
- `fail_orphaned_runs`, called by `configure()` at every tracked step, marks
  RUNNING runs of dead processes on this host FAILED with a note the UI shows.
  Runs of other hosts are never touched: their processes cannot be checked from here.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import threading
import time
from typing import Iterable

import mlflow
import psutil
from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.abstract_context import RunContextProvider

PID_TAG = "ferops.pid"
HOST_TAG = "ferops.host"
START_TAG = "ferops.pid_start"  # process start, seconds since the epoch: a reused pid has a different one
# Containers can share a host name (`docker run --network host`) but not pid numbers: only a process in
# the same pid namespace may judge whether a pid is alive.
NAMESPACE_TAG = "ferops.pid_namespace"
FLOW_RUN_ENV = "FEROPS_PREFECT_FLOW_RUN_ID"
FLOW_RUN_TAG = "prefect.flow_run_id"  # the Prefect flow run that started this MLflow run
END_TAG = "ferops.end_reason"
NOTE_TAG = "mlflow.note.content"  # the run's Description in the UI
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, what shells report


def _start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")  # e.g. "pid:[4026531836]"
    except OSError:  # not Linux: one namespace per host
        return ""


def process_tags() -> dict[str, str]:
    """The tags naming this process; computed per call, since a forked worker is a different process."""
    pid = os.getpid()
    started = _start_time(pid)
    tags = {PID_TAG: str(pid), HOST_TAG: socket.gethostname()}
    if namespace := _pid_namespace():
        tags[NAMESPACE_TAG] = namespace
    if started is not None:
        tags[START_TAG] = f"{started:.2f}"
    if flow_run := os.environ.get(FLOW_RUN_ENV):  # set by the Prefect flows (flows/stages.py) for their processes
        tags[FLOW_RUN_TAG] = flow_run
    return tags


class ProcessRunContext(RunContextProvider):
    """MLflow run-context provider: `mlflow.start_run` adds `process_tags()` to every new run."""

    def in_context(self) -> bool:
        return True

    def tags(self) -> dict[str, str]:
        return process_tags()


def register_process_tags() -> None:
    """Make every run this process starts carry `process_tags()` (idempotent).

    MLflow's documented route is an `mlflow.run_context_provider` entry point;
    registering in-process as well means it works without reinstalling the
    package, and for runs started by other code (Optuna callbacks) in the same process.
    """
    from mlflow.tracking.context.registry import _run_context_provider_registry as registry

    if not any(isinstance(provider, ProcessRunContext) for provider in registry):
        registry.register(ProcessRunContext)


def _process_alive(pid: int, started: float | None) -> bool:
    """Whether the process that started a run still exists (a zombie or a reused pid does not count)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # Without a recorded start time a live pid cannot be told from a reused one: leave the run alone.
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # exists, owned by someone else
        return True


def _search(client: MlflowClient, experiment_ids: list[str], filter_string: str) -> list[Run]:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def _append_note(client: MlflowClient, run: Run, text: str) -> None:
    old = run.data.tags.get(NOTE_TAG, "").strip()
    client.set_tag(run.info.run_id, NOTE_TAG, f"{old}\n\n{text}" if old else text)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def fail_orphaned_runs(experiment_ids: Iterable[str], client: MlflowClient | None = None) -> list[str]:
    """Mark FAILED the RUNNING runs whose process on this host is gone; return their ids."""
    client = client or MlflowClient()
    host = socket.gethostname()
    running = _search(client, list(experiment_ids),
                      f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'")
    orphans, namespace = [], _pid_namespace()
    for run in running:
        tags = run.data.tags
        if tags.get(NAMESPACE_TAG, namespace) != namespace:
            continue  # another container on this host: its pids mean nothing here
        try:
            pid = int(tags[PID_TAG])
            started = float(tags[START_TAG]) if START_TAG in tags else None
        except (KeyError, ValueError):
            continue  # not tagged by ferops: nothing to check it against
        if _process_alive(pid, started):
            continue
        since = f", started {_when(started)}" if started is not None else ""
        _append_note(client, run, (
            f"**FAILED: its process died.** Process {pid} on {host}{since} ended without closing this run "
            f"(SIGKILL, out of memory, a crash or a reboot). Found and marked FAILED on {_when(time.time())} "
            f"by process {os.getpid()}; metrics and artifacts logged before then are kept."))
        client.set_tag(run.info.run_id, END_TAG, "process died")
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
        orphans.append(run.info.run_id)
    return orphans


class Interrupted(SystemExit):
    """SIGINT/SIGTERM as an exit: unwinds `finally`/`with` blocks, prints no traceback, exits 128+signal."""


_interrupt: dict = {"installed": False, "signal": None, "run_id": None}


def _on_signal(signum, frame) -> None:
    # A second Ctrl-C stops at once; the next configure() marks what is left FAILED.
    for sig in EXIT_CODES:
        signal.signal(sig, signal.SIG_DFL)
    run = mlflow.active_run()  # in memory only: no store I/O inside a signal handler
    _interrupt.update(signal=signum, run_id=run.info.run_id if run else None)
    # The exception lands wherever the main thread is; inside a finaliser (a weakref callback, __del__) Python
    # only prints and ignores it, and the work would go on. If the process has not begun exiting soon, stop it.
    watchdog = threading.Timer(WATCHDOG_S, _exit_if_still_running, args=(signum,))
    watchdog.daemon = True
    watchdog.start()
    raise Interrupted(EXIT_CODES[signum])


WATCHDOG_S = 5.0


def _unraisable(unraisable) -> None:
    """Our exit swallowed by a finaliser: no "Exception ignored ... Traceback", just the exit it meant."""
    if isinstance(unraisable.exc_value, Interrupted) and _interrupt["signal"] is not None:
        _exit_if_still_running(_interrupt["signal"])
    _interrupt["default_unraisablehook"](unraisable)


def _exit_if_still_running(signum: int) -> None:
    if _interrupt.get("exiting"):
        return
    _mark_interrupted_runs()
    sys.stderr.flush()
    os._exit(EXIT_CODES[signum])


def _lineage(client: MlflowClient, run_id: str) -> list[Run]:
    """The run active at the signal and its parents, innermost first."""
    chain = []
    while run_id:
        run = client.get_run(run_id)
        chain.append(run)
        run_id = run.data.tags.get("mlflow.parentRunId")
    return chain


def _mark_interrupted_runs() -> None:
    """At exit after a signal: every run this process had open ends KILLED, and one line says so."""
    signum = _interrupt["signal"]
    if signum is None or _interrupt.get("exiting"):
        return
    _interrupt["exiting"] = True
    name = signal.Signals(signum).name
    try:
        # Runs started without `with` are still on MLflow's stack; close them before MLflow's own
        # atexit hook would call them FINISHED.
        while mlflow.active_run():
            mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        client = MlflowClient()
        chain = _lineage(client, _interrupt["run_id"]) if _interrupt["run_id"] else []
        # Runs of this process in other threads (not on the main thread's stack) end too.
        mine = process_tags()
        others = _search(client, sorted({r.info.experiment_id for r in chain}),
                         f"attributes.status = 'RUNNING' and tags.`{PID_TAG}` = '{mine[PID_TAG]}' "
                         f"and tags.`{HOST_TAG}` = '{mine[HOST_TAG]}'") if chain else []
        seen = {r.info.run_id for r in chain}
        runs = chain + [r for r in others if r.info.run_id not in seen
                        and r.data.tags.get(START_TAG) == mine.get(START_TAG)]
        for run in runs:
            _append_note(client, run, f"**KILLED** by {name} on {_when(time.time())} (process {os.getpid()}).")
            client.set_tag(run.info.run_id, END_TAG, name)
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
    except Exception as exc:  # the store is unreachable: say so, the exit code still tells the truth
        print(f"ferops: interrupted by {name}; could not mark runs KILLED: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return
    if not runs:
        print(f"ferops: interrupted by {name}", file=sys.stderr)
        return
    root = chain[-1].info.run_id if chain else runs[0].info.run_id
    more = len(runs) - 1
    nested = f" with {more} nested run{'s' if more > 1 else ''}" if more else ""
    print(f"ferops: interrupted by {name}, run {root} marked KILLED{nested}", file=sys.stderr)


def install_interrupt_handlers() -> bool:
    """SIGINT/SIGTERM -> runs KILLED, one stderr line, exit 130/143. For entry points (the CLI), not libraries.

    Signal handlers belong to the main thread and to whoever owns the process:
    a notebook or pytest keeps its own Ctrl-C, so `configure()` does not call this.
    Returns False (and does nothing) off the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in EXIT_CODES:
        signal.signal(sig, _on_signal)
    if sys.unraisablehook is not _unraisable:
        _interrupt["default_unraisablehook"] = sys.unraisablehook
        sys.unraisablehook = _unraisable
    if not _interrupt["installed"]:
        # Registered after mlflow's own atexit hook, so it runs before it (atexit is last-in, first-out).
        atexit.register(_mark_interrupted_runs)
        _interrupt["installed"] = True
    return True
