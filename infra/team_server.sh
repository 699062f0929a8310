#!/usr/bin/env bash
# A team's tracking server: PostgreSQL (runs, metrics, the model registry; Optuna studies in a second
# database) plus `mlflow server` proxying artifacts, all state under one directory. No Docker needed.
#
#   infra/team_server.sh start     # initdb on first use, then pg_ctl start, createdb, mlflow server
#   infra/team_server.sh status
#   infra/team_server.sh stop
#
# Then, on every machine of the team:  export MLFLOW_TRACKING_URI=http://<host>:${MLFLOW_PORT}
# Optuna (same PostgreSQL, own database): postgresql+psycopg2://ferops@<host>:${PG_PORT}/optuna
#
# Settings (environment):
#   TEAM_DIR       state directory: pgdata/ (the cluster), artifacts/, mlflow.log     (.team_server)
#   PG_HOST        address PostgreSQL listens on; 0.0.0.0 for other machines          (127.0.0.1)
#   PG_PORT        PostgreSQL port                                                    (5433)
#   PG_PASSWORD    password of the `ferops` role; unset = trust (only sane on 127.0.0.1)
#   PG_BIN         PostgreSQL binaries                    (pg_config --bindir, else /usr/lib/postgresql/*/bin)
#   PG_OS_USER     system user PostgreSQL runs as when this script runs as root       (postgres)
#   INITDB_OPTS    extra initdb options, PG_OPTS extra server options (tests: --no-sync, -c fsync=off)
#   MLFLOW_HOST    address mlflow server binds; 0.0.0.0 for other machines            (127.0.0.1)
#   MLFLOW_PORT    mlflow server port                                                 (5000)
#   MLFLOW_WORKERS server worker processes                                            (2)
#   ARTIFACTS      --artifacts-destination: a directory or s3://bucket/path           ($TEAM_DIR/artifacts)
#   ALLOWED_HOSTS  --allowed-hosts for clients reaching the server by name            (MLflow's default)
set -euo pipefail
cd "$(dirname "$0")/.."

TEAM_DIR="$(mkdir -p "${TEAM_DIR:-.team_server}" && cd "${TEAM_DIR:-.team_server}" && pwd)"
PGDATA="$TEAM_DIR/pgdata"
PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5433}"
PG_OS_USER="${PG_OS_USER:-postgres}"
MLFLOW_HOST="${MLFLOW_HOST:-127.0.0.1}"
MLFLOW_PORT="${MLFLOW_PORT:-5000}"
ARTIFACTS="${ARTIFACTS:-$TEAM_DIR/artifacts}"
MLFLOW="${MLFLOW:-$PWD/.venv/bin/mlflow}"
PYTHON="${PYTHON:-$PWD/.venv/bin/python}"
PID_FILE="$TEAM_DIR/mlflow.pid"
export PATH="$(dirname "$MLFLOW"):$PATH"  # mlflow server starts uvicorn by name

die() { echo "team_server: $*" >&2; exit 1; }

if [[ -z "${PG_BIN:-}" ]]; then
  if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
    PG_BIN="$(pg_config --bindir)"
  else
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  fi
fi
[[ -x "${PG_BIN:-}/initdb" ]] || die "PostgreSQL binaries not found (initdb); install postgresql or set PG_BIN"

# PostgreSQL refuses to run as root: then its commands run as PG_OS_USER, who owns the data directory.
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi; }

db_url() {  # postgresql+psycopg2://ferops[:password]@host:port/<db>, as clients on this machine reach it
  local auth="ferops"
  [[ -n "${PG_PASSWORD:-}" ]] && auth="ferops:${PG_PASSWORD}"
  local host="$PG_HOST"
  [[ "$host" == "0.0.0.0" ]] && host="127.0.0.1"
  echo "postgresql+psycopg2://${auth}@${host}:${PG_PORT}/$1"
}

pg_env() { env PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER=ferops PGPASSWORD="${PG_PASSWORD:-}" "$@"; }

init_cluster() {
  [[ -f "$PGDATA/PG_VERSION" ]] && return
  [[ "$PG_HOST" == "127.0.0.1" || -n "${PG_PASSWORD:-}" ]] || die "PG_HOST=$PG_HOST opens PostgreSQL to the network: set PG_PASSWORD"
  mkdir -p "$PGDATA"
  local auth=(--auth=trust) pwfile=""
  if [[ -n "${PG_PASSWORD:-}" ]]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$PG_PASSWORD" >"$pwfile"
    auth=(--auth=scram-sha-256 --pwfile="$pwfile")
  fi
  if [[ $(id -u) -eq 0 ]]; then
    chown "$PG_OS_USER" "$PGDATA"
    [[ -n "$pwfile" ]] && chown "$PG_OS_USER" "$pwfile"
    as_pg test -w "$PGDATA" || die "$PGDATA: user $PG_OS_USER cannot reach it; give $TEAM_DIR's parents o+x or move TEAM_DIR"
  fi
  # shellcheck disable=SC2086  # INITDB_OPTS is a list of options
  as_pg "$PG_BIN/initdb" -D "$PGDATA" -U ferops --encoding=UTF8 "${auth[@]}" ${INITDB_OPTS:-} >"$TEAM_DIR/initdb.log"
  [[ -n "$pwfile" ]] && rm -f "$pwfile"
  if [[ "$PG_HOST" != "127.0.0.1" ]]; then  # other machines: password logins from anywhere
    echo "host all all 0.0.0.0/0 scram-sha-256" | as_pg tee -a "$PGDATA/pg_hba.conf" >/dev/null
  fi
}

start_postgres() {
  if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    return
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
    -o "-c listen_addresses=$PG_HOST -p $PG_PORT -c unix_socket_directories='' ${PG_OPTS:-}" start >/dev/null \
    || die "PostgreSQL did not start; see $PGDATA/server.log"
  for db in mlflow optuna; do  # one database each: both keep an alembic_version table
    if [[ -z "$(pg_env "$PG_BIN/psql" -d postgres -tAc "select 1 from pg_database where datname = '$db'")" ]]; then
      pg_env "$PG_BIN/createdb" "$db"
    fi
  done
}

start_mlflow() {
  if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    return
  fi
  local extra=()
  [[ -n "${ALLOWED_HOSTS:-}" ]] && extra+=(--allowed-hosts "$ALLOWED_HOSTS")
  [[ "$ARTIFACTS" == *://* ]] || mkdir -p "$ARTIFACTS"
  setsid nohup "$MLFLOW" server --host "$MLFLOW_HOST" --port "$MLFLOW_PORT" --workers "${MLFLOW_WORKERS:-2}" \
    --backend-store-uri "$(db_url mlflow)" --artifacts-destination "$ARTIFACTS" --serve-artifacts \
    "${extra[@]}" >"$TEAM_DIR/mlflow.log" 2>&1 &
  echo $! >"$PID_FILE"  # its own process group: stop ends the server's uvicorn workers with it
  "$PYTHON" - "$MLFLOW_PORT" "$(cat "$PID_FILE")" <<'EOF' || die "mlflow server did not become healthy; see $TEAM_DIR/mlflow.log"
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
for _ in range(240):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
        sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(1)
        time.sleep(0.5)
sys.exit(1)
EOF
}

stop_all() {
  if [[ -f "$PID_FILE" ]]; then
    local pid
    pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -- "-$pid"
      for _ in $(seq 10); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      # uvicorn waits for clients' keep-alive connections to close; 5 s is grace enough
      if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid"; fi
    fi
    rm -f "$PID_FILE"
  fi
  if [[ -f "$PGDATA/postmaster.pid" ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  fi
}

case "${1:-}" in
  start)
    init_cluster
    start_postgres
    start_mlflow
    echo "MLFLOW_TRACKING_URI=http://${MLFLOW_HOST/0.0.0.0/127.0.0.1}:${MLFLOW_PORT}"
    echo "OPTUNA_STORAGE=$(db_url optuna)"
    ;;
  stop)
    stop_all
    ;;
  status)
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status || true
    if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      echo "mlflow server: running (pid $(cat "$PID_FILE")) on port $MLFLOW_PORT"
    else
      echo "mlflow server: not running"
    fi
    ;;
  *)
    die "usage: $0 start|stop|status"
    ;;
esac
