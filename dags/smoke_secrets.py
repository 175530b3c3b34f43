"""Smoke test of the stored secrets: a task reads a Variable and a Connection.

Both are stored encrypted with the Fernet key, so this is the check to run
after `make rotate SECRET=fernet` (or a restore): trigger it with conf
{"variable": "<key>", "connection": "<conn id>"}. The task fails when either
cannot be read or decrypted, and returns SHA-256 digests of the Variable's
value and the Connection's password (never the secrets themselves), which
the tests compare with what they stored.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from airflow.sdk import Connection, Variable, dag, task


def _digest(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


@dag(
    dag_id="smoke_secrets",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["smoke"],
    params={"variable": "smoke_variable", "connection": "smoke_connection"},
)
def smoke_secrets():
    @task(queue="default")
    def read(params=None) -> dict:
        value = Variable.get(params["variable"])
        connection = Connection.get(params["connection"])
        return {"variable_sha256": _digest(value), "password_sha256": _digest(connection.password)}

    read()


smoke_secrets()
