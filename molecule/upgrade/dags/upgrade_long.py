"""Upgrade test DAG: one task that runs long enough to span a rolling
restart or an upgrade, and must end in success on its first try (no retries:
a killed task fails the run).

Trigger with conf {"seconds": N} (default 90).
"""

from __future__ import annotations

import socket
import time
from datetime import datetime

from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="upgrade_long",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["upgrade"],
    default_args={"retries": 0},
)
def upgrade_long():
    @task(queue="default")
    def sleep_for() -> dict:
        seconds = int(get_current_context()["dag_run"].conf.get("seconds", 90))
        time.sleep(seconds)
        return {"slept": seconds, "hostname": socket.gethostname()}

    sleep_for()


upgrade_long()
