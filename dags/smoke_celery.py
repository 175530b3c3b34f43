"""Smoke test of a deployment: tasks on the Celery queue that use the plugin.

`where` and `where_again` run on the default Celery queue and return their
host and the shipped plugin's signature; `check` fails unless both carry the
plugin's mark. Trigger it with conf {"linger": N} to make `where` run N
seconds (used to stop a worker while a task runs on it). The tests read each task instance's hostname and queue, and
the XCom values, through the REST API. Trigger it from the UI or with
`airflow dags trigger smoke_celery` after a deploy.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta

from airflow.sdk import dag, task
from smoke_plugin import PLUGIN_MARK, signature


@dag(
    dag_id="smoke_celery",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["smoke"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    params={"linger": 0},
)
def smoke_celery():
    @task(queue="default")
    def where(params=None) -> dict:
        time.sleep(int(params["linger"]))
        host = socket.gethostname()
        return {"hostname": host, "signature": signature(host)}

    @task(queue="default")
    def where_again() -> dict:
        host = socket.gethostname()
        return {"hostname": host, "signature": signature(host)}

    @task(queue="default")
    def check(first: dict, second: dict) -> list[str]:
        marks = [first["signature"], second["signature"]]
        for mark in marks:
            if not mark.startswith(PLUGIN_MARK + "@"):
                raise ValueError(f"plugin not used: {mark!r}")
        return marks

    check(where(), where_again())


smoke_celery()
