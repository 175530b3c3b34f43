"""Single node: every component on one VM, checked against the real services."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

from airflow_testlib import (
    AIRFLOW_INSTALL_ROOT,
    COMPONENT_UNITS,
    CURRENT,
    INVENTORY,
    ROOT,
    SHARED,
    address,
    api_url,
    assert_no_import_errors,
    assert_ok,
    deployed_lock,
    http_get,
    listeners,
    postgresql_major,
    release_of,
    redis_answers,
    restart_markers,
    run_status,
    switch_info,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("all")

UNITS = [*COMPONENT_UNITS.values(), f"postgresql@{postgresql_major()}-main", "redis-server"]


@pytest.mark.parametrize("unit", UNITS)
def test_unit_enabled_and_active(host, unit):
    service = host.service(unit)
    assert service.is_enabled, f"{unit} is not enabled"
    assert service.is_running, f"{unit} is not active"


def test_units_restart_like_restart_always(host):
    """The seed's `restart: always`; the worker restarts on failure only: a
    worker that exits cleanly was stopped on purpose (a warm shutdown)."""
    for unit in COMPONENT_UNITS.values():
        policy = host.check_output(f"systemctl show -p Restart --value {unit}")
        assert policy == ("on-failure" if unit == "airflow-worker" else "always"), f"{unit}: Restart={policy}"
        assert host.check_output(f"systemctl show -p User --value {unit}") == "airflow"


@pytest.mark.parametrize(
    "port, where",
    [
        (8080, "0.0.0.0"),  # api-server
        (8974, "0.0.0.0"),  # scheduler health server
        (8793, "0.0.0.0"),  # worker log server
        (5555, "127.0.0.1"),  # flower, loopback only
        (5432, "node"),  # postgres on the node address
        (6379, "node"),  # redis on the node address
    ],
)
def test_listening(host, port, where):
    ip = address(host) if where == "node" else where
    assert host.socket(f"tcp://{ip}:{port}").is_listening, f"nothing listens on {ip}:{port}"


def test_flower_not_on_network(host):
    """Flower listens on loopback only (any other address, IPv4 or IPv6, fails)."""
    assert listeners(host, 5555) == ["127.0.0.1:5555"]


@pytest.mark.parametrize(
    "path, owner, group, mode",
    [
        ("/etc/airflow/airflow.cfg", "root", "airflow", 0o640),
        ("/etc/redis/redis.conf", "redis", "redis", 0o640),
        (f"/etc/postgresql/{postgresql_major()}/main/pg_hba.conf", "postgres", "postgres", 0o640),
    ],
)
def test_secret_files_not_world_readable(host, path, owner, group, mode):
    f = host.file(path)
    assert f.exists
    assert (f.user, f.group, f.mode) == (owner, group, mode)


def test_no_world_readable_file_holds_a_secret(host, secrets):
    """No file any user can read, under the places the roles write, holds a vault value."""
    for name, value in secrets.items():
        found = host.run(
            "find /etc /opt/airflow /var/lib/airflow /var/log/airflow /usr/local/bin -xdev -type f -perm -o=r "
            "-exec grep -l -F -e %s {} +",
            value,
        )
        assert found.stdout.strip() == "", f"{name} readable by anyone in: {found.stdout}"


def test_airflow_cfg_matches_the_seed(host):
    def value(section, key):
        return host.check_output(f"airflow config get-value {section} {key} 2>/dev/null | tail -1")

    assert value("core", "executor") == "CeleryExecutor"
    assert value("core", "auth_manager").endswith("FabAuthManager")
    assert value("core", "load_examples") == "False"
    assert value("core", "dags_are_paused_at_creation") == "True"
    assert value("core", "execution_api_server_url") == f"{api_url(host)}/execution/"
    assert value("scheduler", "enable_health_check") == "True"
    assert value("database", "sql_alchemy_conn").startswith("postgresql+psycopg2://airflow:")
    assert value("celery", "broker_url").startswith("redis://:")
    assert value("celery", "result_backend").startswith("db+postgresql://airflow:")
    # tasks ride out an api-server restart (README: what a restart does to tasks)
    assert value("workers", "execution_api_retries") == "15"
    assert value("workers", "execution_api_retry_wait_min") == "5"
    assert value("workers", "execution_api_retry_wait_max") == "10"


def test_shared_secrets_deployed(host, secrets):
    cfg = host.file("/etc/airflow/airflow.cfg").content_string
    assert f"jwt_secret = {secrets['vault_airflow_jwt_secret']}" in cfg
    assert f"secret_key = {secrets['vault_airflow_api_secret_key']}" in cfg
    assert f"fernet_key = {secrets['vault_airflow_fernet_key']}" in cfg


def test_admin_cli_on_path(host):
    out = host.check_output("airflow dags list --output plain 2>/dev/null")
    assert "smoke_celery" in out
    plugins = host.check_output("airflow plugins --output plain 2>/dev/null")
    assert "smoke_plugin" in plugins


def test_plugins_folder_holds_airflow_plugins_only(host):
    """The repository's plugins/ is also the collection's Ansible plugins
    folder: the Airflow plugins are shipped, the Ansible plugin folders are
    not (a change of the collection's code restarts no component)."""
    shipped = sorted(host.check_output("ls -A /var/lib/airflow/plugins").split())
    repo = Path(__file__).resolve().parents[3] / "plugins"
    airflow_plugins = sorted(p.name for p in repo.iterdir() if p.is_file())
    assert shipped == airflow_plugins, f"shipped {shipped}, the repository's Airflow plugins are {airflow_plugins}"
    assert {"action", "filter", "modules"} <= {p.name for p in repo.iterdir() if p.is_dir()}


def test_redis_refuses_without_password(host, secrets):
    ip = address(host)
    anonymous = host.run(f"redis-cli -h {ip} ping")
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    assert redis_answers(host, secrets["vault_redis_password"]) == "PONG"


def test_postgres_needs_password(host, secrets):
    ip = address(host)
    wrong = host.run(f"PGPASSWORD=wrong-password psql -h {ip} -U airflow -d airflow -c 'select 1'")
    assert wrong.rc != 0 and "password authentication failed" in wrong.stderr
    # the superuser has no network entry at all (whatever the password)
    superuser = host.run(f"PGPASSWORD=x psql -h {ip} -U postgres -d postgres -c 'select 1'")
    assert superuser.rc != 0 and "no pg_hba.conf entry" in superuser.stderr, superuser.stderr
    right = host.run(
        f"PGPASSWORD=%s psql -h {ip} -U airflow -d airflow -tAc 'select count(*) from ab_user'",
        secrets["vault_postgresql_airflow_password"],
    )
    assert right.rc == 0 and int(right.stdout) >= 1


def test_monitor_health_all_healthy(api):
    health = http_get(f"{api.base_url}/api/v2/monitor/health").json()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", f"{component}: {health[component]}"


def test_running_version_is_the_locked_one(api, host):
    """The api-server runs the Airflow version of the lock of the current release."""
    lock = host.file(f"{CURRENT}/requirements.lock").content_string
    locked = re.search(r"^apache-airflow==([^\s]+)", lock, re.MULTILINE).group(1)
    assert api.get("/api/v2/version").json()["version"] == locked
    assert locked == os.environ["EXPECTED_AIRFLOW_VERSION"]


def test_api_requires_login(api):
    assert http_get(f"{api.base_url}/api/v2/dags").status_code == 401
    assert api.get("/api/v2/dags").status_code == 200


def test_dags_and_plugins_import(api):
    assert_no_import_errors(api)


def test_smoke_dag_runs_on_celery_worker_with_plugin(api, host):
    run, tis = api.run_dag("smoke_celery")
    states = {ti["task_id"]: ti["state"] for ti in tis}
    assert run["state"] == "success", f"run ended {run['state']}: {states}"
    hostname = host.check_output("hostname")
    for ti in tis:
        assert ti["state"] == "success"
        assert ti["queue"] == "default"
        assert ti["hostname"] == hostname, f"{ti['task_id']} ran on {ti['hostname']}"
    where = api.xcom("smoke_celery", run["dag_run_id"], "where")
    assert where["signature"] == f"smoke-plugin-v1@{hostname}"
    marks = api.xcom("smoke_celery", run["dag_run_id"], "check")
    assert all(mark.startswith("smoke-plugin-v1@") for mark in marks)


@pytest.mark.parametrize("unit", [*COMPONENT_UNITS.values(), "airflow-maintenance"])
def test_unit_sandbox_exposure_at_most_5(host, unit):
    """systemd's own score of the unit's sandbox (0 = locked down, 10 = exposed)."""
    out = host.check_output(f"systemd-analyze security {unit}.service --no-pager | tail -1")
    score = float(re.search(r"exposure level for .*: ([0-9.]+)", out).group(1))
    print(f"{unit}: exposure {score}")
    assert score <= 5.0, out


def expected_release(host) -> tuple[str, str]:
    """(release id, SHA-1 of the committed lock) that this host must run:
    <airflow_version>-py<X.Y>-<first 12 hex of the lock's SHA-1>."""
    version = os.environ["EXPECTED_AIRFLOW_VERSION"]
    minor = host.check_output("python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
    lock = deployed_lock(version, minor)
    digest = hashlib.sha1(lock.read_bytes()).hexdigest()
    return f"{version}-py{minor}-{digest[:12]}", digest


def test_current_release_is_whole_and_locked(host):
    """/opt/airflow/current -> releases/<id> (relative), the release is whole
    (.complete), holds the committed lock, the old single venv is gone, and
    switch.json records the switch to it."""
    release, digest = expected_release(host)
    assert host.check_output(f"readlink {CURRENT}") == f"releases/{release}"
    assert host.file(f"{AIRFLOW_INSTALL_ROOT}/releases/{release}/.complete").exists, f"release {release} not marked complete"
    assert host.check_output(f"sha1sum < {CURRENT}/requirements.lock | cut -c1-40") == digest
    for gone in ("venv", "requirements.lock"):
        assert not host.file(f"{AIRFLOW_INSTALL_ROOT}/{gone}").exists, f"{AIRFLOW_INSTALL_ROOT}/{gone} is still there"
    # every deploy that set the link recorded it, the first install too
    record = switch_info(host)
    assert record["to"] == release and record["to_version"] == os.environ["EXPECTED_AIRFLOW_VERSION"], record


def test_no_restart_pending_after_a_deploy(host):
    """Restart markers go once their component is healthy again."""
    assert restart_markers(host) == []


@pytest.mark.parametrize("unit", list(COMPONENT_UNITS.values()))
def test_units_run_the_current_release(host, unit):
    """Each unit starts the current release's airflow, and loads the
    environment file whose PATH puts that release's bin first (python and pip
    of the release: what task virtualenvs use). /proc/PID/environ cannot tell:
    Celery and the api-server rewrite it with their process titles."""
    exec_start = host.check_output(f"systemctl show -p ExecStart --value {unit}")
    argv = re.search(r"argv\[\]=(\S+)", exec_start)
    assert argv and argv.group(1) == f"{CURRENT}/bin/airflow", exec_start
    env_files = host.check_output(f"systemctl show -p EnvironmentFiles --value {unit}")
    assert env_files.split()[0] == "/etc/airflow/airflow.env", env_files
    env = host.file("/etc/airflow/airflow.env").content_string.splitlines()
    path = next((line[5:] for line in env if line.startswith("PATH=")), "")
    assert path.split(":")[0] == f"{CURRENT}/bin", f"{unit} PATH={path}"


def test_make_logs_follows_a_component_journal(host, tmp_path):
    """`make logs` (scripts/logs.sh) on an inventory as `make bootstrap`
    leaves it: the vault encrypted, its password file beside the hosts, no
    ANSIBLE_VAULT_PASSWORD_FILE. It follows the scheduler's journal on the
    host (still following when stopped after 20 s)."""
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    for entry in Path(INVENTORY).iterdir():
        (inventory / entry.name).symlink_to(entry)
    (inventory / ".vault_pass").symlink_to(SHARED / ".vault_pass")
    env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_VAULT_PASSWORD_FILE"}
    result = subprocess.run(
        ["timeout", "20", str(ROOT / "scripts/logs.sh"), str(inventory), "scheduler"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert result.returncode == 124, f"rc {result.returncode}: {result.stderr[-2000:]}"
    name = host.check_output("hostname")
    assert f"== journal of airflow-scheduler on {name}" in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if not line.startswith("--")]  # not journalctl's own notes
    assert lines and all(f" {name} " in line for line in lines), result.stdout[-2000:]


def test_make_status_shows_every_part_healthy(host, tmp_path):
    """`make status` (playbooks/status.yml) on the deployed host passes and
    changes nothing: each unit active (the stack's, Prometheus' and the
    exporters'), the release, each component's probe healthy, Airflow's own
    view, pg_isready's answer, the newest dump, Redis's PONG and Prometheus'
    alerts; no problem."""
    result, report = run_status({}, tmp_path / "status.json")
    assert_ok(result, "make status")
    [(name, status)] = report.items()
    assert status["problems"] == [], status
    lines = status["lines"]
    active = {line.split()[1] for line in lines if re.match(r"unit \S+ active ", line)}
    units = {*UNITS, "postgresql.service", "postgresql-backup.timer", "prometheus", "collectd",
             "prometheus-node-exporter", "prometheus-postgres-exporter", "prometheus-redis-exporter"}
    assert units <= active, (sorted(units - active), lines)
    release = release_of(host)
    assert release and [line for line in lines if line.startswith(f"release {release}")], lines
    for component in COMPONENT_UNITS:
        kind = component.removeprefix("airflow_")
        assert [line for line in lines if re.fullmatch(rf"{kind}: healthy after [0-9.]+ s \(.+\)", line)], (kind, lines)
    assert ("Airflow (/api/v2/monitor/health): metadatabase healthy, scheduler healthy, triggerer healthy, "
            "dag_processor healthy") in lines, lines
    assert [line for line in lines if re.fullmatch(r"\S+:5432 - accepting connections", line)], lines
    assert [line for line in lines if line.startswith("newest dump: ")], lines
    assert [line for line in lines if re.fullmatch(r"Redis on \S+:6379: PONG", line)], lines
    assert [line for line in lines if line.startswith("Prometheus: ")], lines
