"""Prefect's server analytics off by default: ferops runs offline, and the heartbeat only adds tracebacks.

Prefect 3.9's ephemeral server (every flow run without PREFECT_API_URL, and
`prefect_test_harness`) schedules `send_telemetry_heartbeat`. Offline it
fails, and under load its write to the server's SQLite file meets "database is
locked"; either way it logs a 70-line ERROR traceback in the middle of a
training log. `PREFECT_SERVER_ANALYTICS_ENABLED=false` removes that service;
client-side events then stay off too, since the client asks the server.

`setdefault` leaves a user's explicit choice alone. It must happen before the
ephemeral server starts (it copies os.environ when it spawns), which importing
ferops.tracking.store - as every flow and tracked step does - guarantees.
`prefect.toml` in the project root says the same for `prefect server start`.
"""

from __future__ import annotations

import os

OFFLINE_DEFAULTS = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
