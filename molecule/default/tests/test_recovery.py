"""Recovery on the real stack: systemd brings components back, a reboot
restores everything, data-store restarts do not lose a run, and a stopped
worker finishes its running task first. Each recovery time is printed."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
import testinfra.utils.ansible_runner

from airflow_testlib import (
    COMPONENT_UNITS,
    INVENTORY,
    address,
    api_url,
    assert_ok,
    assert_unchanged,
    celery_inspect_command,
    enablement,
    http_get,
    main_pid,
    metadata_sql,
    postgresql_major,
    run_playbook,
    wait_task_running,
    wait_until,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_api_server")
# the components that register a job row in the metadata database (no port to ask)
JOBS = {"airflow-dag-processor": "DagProcessorJob", "airflow-triggerer": "TriggererJob"}


def newest_running_job(host, unit: str) -> int:
    """The id of the newest running job row of the component (0 if none)."""
    return int(metadata_sql(host, f"SELECT coalesce(max(id), 0) FROM job WHERE job_type = '{JOBS[unit]}' AND state = 'running'"))


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
        return host.run(celery_inspect_command(host, "ping", timeout=5)).rc == 0
    return host.run(f"airflow jobs check --job-type {JOBS[unit]} --local").rc == 0


@pytest.mark.parametrize("unit", list(COMPONENT_UNITS.values()))
def test_kill_9_restarts_and_heals_within_60s(host, unit):
    before = main_pid(host, unit)
    assert before > 0
    # the killed process's job row still looks alive until its heartbeat ages:
    # the new process must have registered its own
    job_before = newest_running_job(host, unit) if unit in JOBS else 0
    host.check_output(f"kill -9 {before}")
    took = wait_until(
        lambda: main_pid(host, unit) not in (0, before)
        and host.service(unit).is_running
        and (unit not in JOBS or newest_running_job(host, unit) > job_before)
        and healthy(host, unit),
        60,
        f"{unit} back and healthy after kill -9",
        interval=1,
    )
    print(f"{unit}: healthy again {took:.1f} s after kill -9")


def test_run_survives_postgres_and_redis_restarts(host, api):
    run_id = api.trigger("smoke_celery", {"linger": 15})
    wait_task_running(api, "smoke_celery", run_id, "where", timeout=120)
    start = time.monotonic()
    host.check_output("systemctl restart postgresql redis-server")
    run, tis = api.wait_run("smoke_celery", run_id)
    print(f"run finished {time.monotonic() - start:.1f} s after restarting postgresql and redis-server")
    said = [(ti["task_id"], ti["state"], ti["try_number"]) for ti in tis]
    assert run["state"] == "success", said
    # the DAG retries failed tasks: the one running through the restarts must not have needed it
    assert all(try_number == 1 for _, _, try_number in said), said


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
    wait_until(lambda: healthy(host, "airflow-worker"), 120, "worker back", interval=1)
    run, _ = api.wait_run("smoke_celery", run_id)
    assert run["state"] == "success"


def test_reboot_brings_everything_back(host, api):
    runs_before = api.get("/api/v2/dags/smoke_celery/dagRuns").json()["total_entries"]
    assert runs_before > 0
    start = time.monotonic()
    reboot(host)
    wait_until(
        lambda: all(host.service(u).is_running for u in COMPONENT_UNITS.values())
        and http_get(f"{api.base_url}/api/v2/monitor/health", timeout=3).json()["scheduler"]["status"] == "healthy",
        240,
        "every unit active and the scheduler healthy after a reboot",
        interval=1,
    )
    print(f"host rebooted: every unit active and healthy {time.monotonic() - start:.1f} s after `docker restart`")
    for unit in [*COMPONENT_UNITS.values(), f"postgresql@{postgresql_major()}-main", "redis-server"]:
        assert host.service(unit).is_enabled and host.service(unit).is_running, unit
    api.relogin()
    assert api.get("/api/v2/dags/smoke_celery/dagRuns").json()["total_entries"] == runs_before
    run, _ = api.run_dag("smoke_celery")
    assert run["state"] == "success"


# what `make down` stops and keeps down across a reboot besides the
# components (postgresql.service, Debian's umbrella unit that starts the
# clusters at boot, only runs at boot: it is checked for being enabled)
DOWN_TOO = ["airflow-maintenance.timer", "postgresql-backup.timer", "redis-server"]


def reboot(host) -> None:
    """`docker restart` the test VM and wait until systemd has finished starting it up."""
    subprocess.run(["docker", "restart", host.check_output("hostname")], check=True, capture_output=True, timeout=300)
    wait_until(lambda: host.run("systemctl is-system-running --wait").stdout.strip() in ("running", "degraded"), 120, "boot")


def test_down_stays_down_across_a_reboot_and_start_brings_everything_back(host, api):
    """`make down`: every component, PostgreSQL, Redis and both timers stop
    and stay stopped across a reboot (nothing fires against the stopped
    database); `make start` (site.yml) brings all of it back, enabled and
    healthy, a DAG runs, and a re-run changes nothing."""
    running = [*COMPONENT_UNITS.values(), *DOWN_TOO, f"postgresql@{postgresql_major()}-main"]
    enabled = [*running, "postgresql"]
    for unit in running:
        assert host.service(unit).is_running, f"{unit} not running before make down"
    for unit in enabled:
        assert enablement(host, unit) == "enabled", f"{unit} not enabled before make down"
    try:
        down = run_playbook("playbooks/down.yml", {})
        assert_ok(down)
        reboot(host)
        for unit in running:
            assert not host.service(unit).is_running, f"{unit} runs after make down and a reboot"
        for unit in enabled:
            assert enablement(host, unit) != "enabled", f"{unit} still enabled after make down"
        again = run_playbook("playbooks/down.yml", {})
        assert_unchanged(again)
    finally:  # the tests after this one need the stack up
        start = time.monotonic()
        up = run_playbook("playbooks/site.yml", {})
    assert_ok(up)
    print(f"make start after make down and a reboot: {time.monotonic() - start:.0f} s")
    for unit in running:
        assert host.service(unit).is_running, f"{unit} not running after make start"
    for unit in enabled:
        assert enablement(host, unit) == "enabled", f"{unit} not enabled after make start"
    api.relogin()
    run, _ = api.run_dag("smoke_celery")
    assert run["state"] == "success"
    rerun = run_playbook("playbooks/site.yml", {})
    assert_unchanged(rerun)
