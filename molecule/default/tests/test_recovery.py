"""Recovery on the real stack: systemd brings components back, a reboot
restores everything, data-store restarts do not lose a run, and a stopped
worker finishes its running task first. Each recovery time is printed."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
import testinfra.utils.ansible_runner

from airflow_testlib import COMPONENT_UNITS, INVENTORY, address, api_url, http_get, postgresql_major, wait_task_running

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_api_server")


def wait_until(check, timeout: float, what: str) -> float:
    """Poll check() until it is true; return the seconds it took."""
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except (requests.RequestException, ValueError, AssertionError, RuntimeError):
            pass
        assert time.monotonic() - start < timeout, f"{what} not within {timeout} s"
        time.sleep(1)


def healthy(host, unit: str) -> bool:
    """The component's own health check, as the playbook's gate runs it."""
    ip = address(host)
    if unit == "airflow-api-server":
        return http_get(f"{api_url(host)}/api/v2/version", timeout=3).status_code == 200
    if unit == "airflow-scheduler":
        return requests.get(f"http://{ip}:8974/health", timeout=3).status_code == 200
    if unit == "airflow-flower":
        return host.run("curl -sf http://127.0.0.1:5555/healthcheck").rc == 0
    if unit == "airflow-worker":
        name = host.check_output("hostname")
        return host.run(
            "runuser -u airflow -- env AIRFLOW_HOME=/var/lib/airflow AIRFLOW_CONFIG=/etc/airflow/airflow.cfg "
            "/opt/airflow/current/bin/celery --app airflow.providers.celery.executors.celery_executor.app "
            f"inspect ping --timeout 5 --destination celery@{name}"
        ).rc == 0
    job = {"airflow-dag-processor": "DagProcessorJob", "airflow-triggerer": "TriggererJob"}[unit]
    return host.run(f"airflow jobs check --job-type {job} --local").rc == 0


def main_pid(host, unit: str) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}"))


@pytest.mark.parametrize("unit", list(COMPONENT_UNITS.values()))
def test_kill_9_restarts_and_heals_within_60s(host, unit):
    before = main_pid(host, unit)
    assert before > 0
    host.check_output(f"kill -9 {before}")
    took = wait_until(
        lambda: main_pid(host, unit) not in (0, before) and host.service(unit).is_running and healthy(host, unit),
        60,
        f"{unit} back and healthy after kill -9",
    )
    print(f"{unit}: healthy again {took:.1f} s after kill -9")


def test_run_survives_postgres_and_redis_restarts(host, api):
    run_id = api.trigger("smoke_celery", {"linger": 15})
    time.sleep(5)
    start = time.monotonic()
    host.check_output("systemctl restart postgresql redis-server")
    run, tis = api.wait_run("smoke_celery", run_id)
    print(f"run finished {time.monotonic() - start:.1f} s after restarting postgresql and redis-server")
    assert run["state"] == "success", [(ti["task_id"], ti["state"], ti["try_number"]) for ti in tis]


def test_stopped_worker_finishes_its_running_task(host, api):
    run_id = api.trigger("smoke_celery", {"linger": 20})
    wait_task_running(api, "smoke_celery", run_id, "where", timeout=120)
    start = time.monotonic()
    host.check_output("systemctl stop airflow-worker")  # returns once the worker has exited
    stopped_after = time.monotonic() - start
    where = api.get(f"/api/v2/dags/smoke_celery/dagRuns/{run_id}/taskInstances/where").json()
    print(f"worker stopped {stopped_after:.1f} s after the stop request; task `where` {where['state']}")
    assert where["state"] == "success", "the worker exited before its running task finished"
    assert where["try_number"] == 1
    host.check_output("systemctl start airflow-worker")
    wait_until(lambda: healthy(host, "airflow-worker"), 120, "worker back")
    run, _ = api.wait_run("smoke_celery", run_id)
    assert run["state"] == "success"


def test_reboot_brings_everything_back(host, api):
    runs_before = api.get("/api/v2/dags/smoke_celery/dagRuns").json()["total_entries"]
    assert runs_before > 0
    name = host.check_output("hostname")
    start = time.monotonic()
    subprocess.run(["docker", "restart", name], check=True, capture_output=True, timeout=300)
    took = wait_until(
        lambda: all(host.service(u).is_running for u in COMPONENT_UNITS.values())
        and http_get(f"{api.base_url}/api/v2/monitor/health", timeout=3).json()["scheduler"]["status"] == "healthy",
        240,
        "every unit active and the scheduler healthy after a reboot",
    )
    print(f"host rebooted: every unit active and healthy {took:.1f} s after `docker restart`")
    for unit in [*COMPONENT_UNITS.values(), f"postgresql@{postgresql_major()}-main", "redis-server"]:
        assert host.service(unit).is_enabled and host.service(unit).is_running, unit
    api.token = api.issue_token("admin", api.password)
    api.session.headers["Authorization"] = f"Bearer {api.token}"
    assert api.get("/api/v2/dags/smoke_celery/dagRuns").json()["total_entries"] == runs_before
    run, _ = api.run_dag("smoke_celery")
    assert run["state"] == "success"
