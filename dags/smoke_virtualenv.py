"""Smoke test of task virtualenvs: a PythonVirtualenvOperator on the Celery queue.

`in_venv` runs its callable in a fresh virtualenv (no requirements, no
system site packages) that the operator creates on the worker from the
`python` on the units' PATH (the current release's), and returns the venv's
Python version, sys.prefix and whether Airflow is importable there (it must
not be). The tests read the XCom through the REST API. Trigger it from the
UI or with `airflow dags trigger smoke_virtualenv` after a deploy.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.python import PythonVirtualenvOperator
from airflow.sdk import dag


def describe_venv() -> dict:
    """Runs inside the task's virtualenv: everything it needs is imported here."""
    import importlib.util
    import socket
    import sys

    return {
        "version": sys.version,
        "version_info": list(sys.version_info[:3]),
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "executable": sys.executable,
        "airflow_importable": importlib.util.find_spec("airflow") is not None,
        "hostname": socket.gethostname(),
    }


@dag(
    dag_id="smoke_virtualenv",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["smoke"],
)
def smoke_virtualenv():
    PythonVirtualenvOperator(
        task_id="in_venv",
        queue="default",
        python_callable=describe_venv,
        requirements=[],
        system_site_packages=False,
        # the venv has no Airflow: do not try to load its macros there
        expect_airflow=False,
    )


smoke_virtualenv()
