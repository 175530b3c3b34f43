"""Cluster test DAG: tasks on the default queue and on the `extra` queue.

Only worker hosts that serve `extra` (airflow_worker_queues) may run
`on_extra`; the default-queue tasks may run on any worker.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="smoke_queues", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["smoke"])
def smoke_queues():
    @task(queue="extra")
    def on_extra() -> str:
        return socket.gethostname()

    @task(queue="default")
    def on_default(index: int) -> str:
        time.sleep(5)  # long enough that both workers take some
        return socket.gethostname()

    # enough default-queue tasks that both workers get some
    on_default.expand(index=list(range(8)))
    on_extra()


smoke_queues()
