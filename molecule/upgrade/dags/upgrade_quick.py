"""Upgrade test DAG: one trivial task (runs before the upgrade, after it and
after the rollback)."""

from __future__ import annotations

import socket
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="upgrade_quick", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["upgrade"])
def upgrade_quick():
    @task(queue="default")
    def where() -> str:
        return socket.gethostname()

    where()


upgrade_quick()
