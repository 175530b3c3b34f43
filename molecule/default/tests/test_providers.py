"""Providers and packages beyond Airflow (airflow_extra_requirements,
airflow_extra_os_packages): this scenario's host asks for the HTTP provider,
toolz and jq (host_vars/airflow-single.yml); converge installed them from the
inventory's lock (locks/, made by playbooks/lock.yml). A DAG that imports
both runs on the Celery worker and calls the api-server's own health
endpoint through a Connection; `make lock` re-resolves; a lock that does not
match the extras is refused before any change."""

from __future__ import annotations

import hashlib
import re
import shutil
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import testinfra.utils.ansible_runner
import yaml

from airflow_testlib import (
    CURRENT,
    INVENTORY,
    ROOT,
    assert_ok,
    assert_refused_unchanged,
    assert_unchanged,
    deployed_lock,
    run_playbook,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_worker")

SCENARIO = Path(__file__).resolve().parent.parent
WANTED = yaml.safe_load((SCENARIO / "host_vars/airflow-single.yml").read_text())
EXTRAS = WANTED["airflow_extra_requirements"]
CONNECTION = "airflow_self"
DAG = textwrap.dedent(
    f"""
    import toolz
    from airflow.providers.http.hooks.http import HttpHook
    from airflow.sdk import dag, task

    @dag(dag_id="extra_requirements", schedule=None, catchup=False)
    def extra_requirements():
        @task
        def health() -> str:
            response = HttpHook(method="GET", http_conn_id="{CONNECTION}").run("/api/v2/monitor/health")
            return toolz.get_in(["metadatabase", "status"], response.json())

        health()

    extra_requirements()
    """
)


def packages(lock_text: str) -> dict[str, str]:
    """name -> version of every requirement line of a lock (a name may repeat
    with markers: the last wins, enough for the names checked here)."""
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^\s;]+)", lock_text, re.MULTILINE))


def inputs(lock_text: str) -> list[str]:
    return re.findall(r"^# (?:base|extra): .*$", lock_text, re.MULTILINE)


def python_minor(host) -> str:
    return host.check_output("python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")


def test_the_extras_are_installed_from_the_inventory_lock(host):
    lock = deployed_lock("3.3.2", python_minor(host))
    assert lock.parent.name == "locks" and "roles" not in lock.parts, f"the scenario has no inventory lock: {lock}"
    assert host.file(f"{CURRENT}/requirements.lock").content_string == lock.read_text()
    locked = packages(lock.read_text())
    for extra in EXTRAS:
        assert extra in locked, f"{extra} is not in {lock}"
    probe = host.run(f"{CURRENT}/bin/python -c 'import toolz, airflow.providers.http; print(toolz.__version__)'")
    assert probe.rc == 0, probe.stderr
    assert probe.stdout.strip() == locked["toolz"]
    for package in WANTED["airflow_extra_os_packages"]:
        assert host.package(package).is_installed, f"{package} (airflow_extra_os_packages) is not installed"


def test_a_dag_using_the_extras_runs_on_celery(host, api, tmp_path):
    """The DAG imports the provider and the package at parse time and in its
    task, which the Celery worker runs; the provider shows in the API."""
    providers = api.get("/api/v2/providers", params={"limit": 100}).json()["providers"]
    assert "apache-airflow-providers-http" in {p["package_name"] for p in providers}

    url = urlsplit(api.base_url)
    connection = {"connection_id": CONNECTION, "conn_type": "http", "host": url.hostname, "port": url.port, "schema": url.scheme}
    api.session.delete(f"{api.base_url}/api/v2/connections/{CONNECTION}", timeout=api.timeout, verify=api.verify)
    created = api.post("/api/v2/connections", connection)
    assert created.status_code == 201, created.text
    src = tmp_path / "dags"
    shutil.copytree(ROOT / "dags", src)
    (src / "extra_requirements.py").write_text(DAG)
    try:
        shipped = run_playbook("playbooks/dags.yml", {"airflow_dags_src": f"{src}/"})
        assert_ok(shipped)
        start = time.monotonic()
        run, tis = api.run_dag("extra_requirements")
        print(f"\nextra_requirements run: {run['state']} after {time.monotonic() - start:.1f} s")
        assert run["state"] == "success", f"run ended {run['state']}: {tis}"
        (ti,) = tis
        assert ti["hostname"] == host.check_output("hostname") and ti["queue"] == "default", ti
        assert api.xcom("extra_requirements", run["dag_run_id"], "health") == "healthy"
    finally:
        restored = run_playbook("playbooks/dags.yml", {})
        api.session.delete(f"{api.base_url}/api/v2/connections/{CONNECTION}", timeout=api.timeout, verify=api.verify)
    assert_ok(restored)
    assert not host.file("/var/lib/airflow/dags/extra_requirements.py").exists


def test_make_lock_resolves_airflow_and_the_extras(host, tmp_path):
    """playbooks/lock.yml (make lock) writes one hash-checked lock per Python
    minor the role has a lock of the version for: the same input lines as the
    committed lock, every package of the role's lock at its version, the extras
    added; a second run changes nothing."""
    made = run_playbook("playbooks/lock.yml", {"airflow_lock_dir": str(tmp_path)})
    assert_ok(made)
    role_locks = sorted((ROOT / "roles/airflow/files/locks").glob("airflow-3.3.2-py*.txt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in role_locks]
    committed = deployed_lock("3.3.2", python_minor(host))
    assert inputs((tmp_path / committed.name).read_text()) == inputs(committed.read_text())
    for role_lock in role_locks:
        text = (tmp_path / role_lock.name).read_text()
        assert inputs(text) == [f"# base: {role_lock.name} {hashlib.sha1(role_lock.read_bytes()).hexdigest()[:12]}", *(f"# extra: {e}" for e in EXTRAS)]
        locked, held = packages(text), packages(role_lock.read_text())
        moved = {name: (version, locked.get(name)) for name, version in held.items() if locked.get(name) != version}
        assert not moved, f"the extras moved packages of the role's lock: {moved}"
        assert set(EXTRAS) <= set(locked) - set(held)
        requirements = re.findall(r"^[a-z0-9].*$", text, re.MULTILINE)
        hashed = re.findall(r"^[a-z0-9][^\n]*\\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.MULTILINE)
        assert len(hashed) == len(requirements), "a requirement without a hash"
    again = run_playbook("playbooks/lock.yml", {"airflow_lock_dir": str(tmp_path)})
    assert_unchanged(again)


def test_a_stale_or_missing_inventory_lock_is_refused(tmp_path):
    """Extras changed without `make lock`, or no lock at all: refused before
    any host changes, naming the variable and the command."""
    stale = run_playbook("playbooks/site.yml", {"airflow_extra_requirements": [*EXTRAS, "sortedcontainers"]})
    assert_refused_unchanged(stale, "airflow_extra_requirements", "was made for other input", "make lock ENV=")
    missing = run_playbook("playbooks/site.yml", {"airflow_lock_dir": str(tmp_path)})
    assert_refused_unchanged(missing, "airflow_extra_requirements", "is missing", "make lock ENV=")
