"""DAG deploys (playbooks/dags.yml, `make dags`): a changed DAG folder ships
in one step (inside the unpacking command when small, as a copied file when
big), the new DAG gets parsed, nothing restarts, files removed on the
controller go from the host, and an unchanged folder changes nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import textwrap
import time

import testinfra.utils.ansible_runner

from airflow_testlib import (
    COMPONENT_UNITS,
    INVENTORY,
    ROOT,
    assert_ok,
    assert_unchanged,
    changed_count,
    main_pid,
    run_playbook,
    task_outcomes,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_api_server")

DAG = textwrap.dedent(
    """
    from airflow.sdk import dag, task

    @dag(dag_id="shipped_by_dags_playbook", schedule=None, catchup=False)
    def shipped():
        @task
        def hello():
            return "hello"

        hello()

    shipped()
    """
)
# the single node runs every component (flower too)
UNITS = list(COMPONENT_UNITS.values())
SEND = "airflow : Send the archive | dags"


def main_pids(host) -> dict[str, int]:
    return {unit: main_pid(host, unit) for unit in UNITS}


def test_dag_change_ships_without_restart(host, api, tmp_path):
    src = tmp_path / "dags"
    shutil.copytree(ROOT / "dags", src)
    (src / "shipped.py").write_text(DAG)
    pids = main_pids(host)

    start = time.monotonic()
    shipped = run_playbook("playbooks/dags.yml", {"airflow_dags_src": f"{src}/"})
    took = time.monotonic() - start
    print(f"\ndags.yml with one new DAG file: {took:.1f} s, changed={changed_count(shipped)}")
    try:
        assert_ok(shipped)
        assert changed_count(shipped) > 0
        dag = host.file("/var/lib/airflow/dags/shipped.py")
        assert dag.exists and dag.content_string == DAG
        assert (dag.user, dag.group, dag.mode) == ("root", "airflow", 0o640)
        assert api.wait_for_dag("shipped_by_dags_playbook")["dag_id"] == "shipped_by_dags_playbook"
        assert main_pids(host) == pids, "a DAG change restarted a component"
        # a small folder travels inside the unpacking command: no copy
        assert task_outcomes(shipped, SEND) == ["skipping"], shipped.stdout[-3000:]

        # 1 MiB of random bytes gzips to more than the inline limit: sent as a file first
        blob = os.urandom(1 << 20)
        (src / "data.bin").write_bytes(blob)
        big = run_playbook("playbooks/dags.yml", {"airflow_dags_src": f"{src}/"})
        assert_ok(big)
        assert task_outcomes(big, SEND) == ["changed"], big.stdout[-3000:]
        assert host.file("/var/lib/airflow/dags/data.bin").sha256sum == hashlib.sha256(blob).hexdigest()
        assert host.file("/var/lib/airflow/dags/shipped.py").content_string == DAG
        assert not host.file("/var/cache/airflow-releases/dags.tar").exists, "the sent archive was left behind"
        assert main_pids(host) == pids, "a DAG change restarted a component"

        again = run_playbook("playbooks/dags.yml", {"airflow_dags_src": f"{src}/"})
        assert_unchanged(again)
    finally:
        restored = run_playbook("playbooks/dags.yml", {})
    assert_ok(restored)
    assert not host.file("/var/lib/airflow/dags/shipped.py").exists
    assert not host.file("/var/lib/airflow/dags/data.bin").exists
    assert host.file("/var/lib/airflow/dags/smoke_celery.py").exists
    assert main_pids(host) == pids
