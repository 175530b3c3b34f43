"""Day 2 on the running single-node deployment.

- A task virtualenv (PythonVirtualenvOperator, dags/smoke_virtualenv.py)
  runs on the Celery worker: the units have the release's `python` on PATH.
- Every interface variable can change on a running deployment: admin user,
  [core] options, worker queues and concurrency (only the worker restarts),
  airflow_config, the admin password, the api-server and flower ports with
  TLS on, and back. A second identical run changes nothing.
- Taken out of the inventory's monitoring group, the host's metrics stop
  (and Airflow's StatsD); put back, they start again.
- The run that brings the first set of changes is killed right after it
  recorded what must restart (the new airflow.cfg is written, the
  components still run the old one): the restart markers in
  /opt/airflow/restart-pending persist and the next run restarts them.

Each playbook run costs 15-40 s on the 2-core test machine, so changes are
grouped. Every test restores the defaults (a plain site.yml run, in a
`finally`) and must leave the deployment as it found it (checked by the
autouse fixture), so the other modules pass in any order.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
import testinfra.utils.ansible_runner

from airflow_testlib import (
    CA_BUNDLE,
    CA_DIR,
    CFG,
    COMPONENT_UNITS,
    CURRENT,
    INVENTORY,
    METRICS_UNITS,
    PROMETHEUS_PORT,
    RESTART_PENDING,
    ROOT,
    USERS_ACL,
    AirflowAPI,
    address,
    admin_api,
    api_url,
    assert_ok,
    assert_unchanged,
    assert_virtualenv_task,
    celery_inspect_command,
    cfg,
    changed_count,
    command_lines,
    enablement,
    http_get,
    inventory_without,
    listeners,
    metadata_sql,
    playbook_env,
    postgresql_major,
    redis_answers,
    restart_markers,
    run_playbook,
    tls_trust,
    unit_active_since,
    wait_for_series,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_api_server")

UNITS = list(COMPONENT_UNITS.values())
# The tasks that write a data store's or an exporter's files (their banners,
# with or without the role's prefix), whose service restarts (or reloads)
# only later in the run (handlers). They come after the task that records
# the restart markers and writes airflow.cfg and the units: a run killed
# right after one has the new config on disk and components that still run
# the old one.
PG_WRITE_TASK = re.compile(r"^TASK \[(?:[^\]]*? : )?Write the server settings, the client authentication rules")
REDIS_WRITE_TASK = re.compile(r"^TASK \[(?:[^\]]*? : )?Write the users file \(password hashes\) and redis\.conf")
EXPORTERS_WRITE_TASK = re.compile(r"^TASK \[(?:[^\]]*? : )?Write the exporters' settings")
NEXT_TASK = ("TASK [", "RUNNING HANDLER [")
# REST calls may take long on the loaded 2-core test machine while a run
# restarts components (the testlib's 15 s read timeout is not retried)
API_TIMEOUT = 60



# --- helpers ----------------------------------------------------------------


def site(extra_vars: dict | None = None, inventory: str | None = None) -> subprocess.CompletedProcess:
    return run_playbook("playbooks/site.yml", extra_vars or {}, inventory=inventory)


def deployed_state(host) -> str:
    """What a test must leave as it found it: airflow.cfg, the env file and the
    units (SHA-1), the current release, no restart marker."""
    return host.check_output(
        f"{{ sha1sum {CFG} /etc/airflow/airflow.env /etc/systemd/system/airflow-*.service;"
        f" readlink {CURRENT}; ls -A {RESTART_PENDING}; }} 2>/dev/null; true"
    )


def active_since(host) -> dict[str, str]:
    """unit -> ActiveEnterTimestampMonotonic: changes exactly when the unit (re)starts."""
    out = host.check_output(
        "systemctl show -p Id -p ActiveEnterTimestampMonotonic " + " ".join(f"{u}.service" for u in UNITS)
    )
    since = {}
    for block in out.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.strip().splitlines() if "=" in line)
        since[props["Id"].removesuffix(".service")] = props["ActiveEnterTimestampMonotonic"]
    assert set(since) == set(UNITS), out
    return since


def started_at(host, units: list[str] = UNITS) -> dict[str, float]:
    """unit -> when it last became active (UTC epoch seconds, microseconds)."""
    out = host.check_output(
        f"for u in {' '.join(units)}; do"
        ' printf "%s %s\\n" "$u" "$(date -d "$(systemctl show -p ActiveEnterTimestamp --value --timestamp=us+utc "$u")" +%s.%N)";'
        " done"
    )
    return {unit: float(when) for unit, when in (line.split() for line in out.splitlines())}


def exec_argv(host, unit: str) -> str:
    """The command line systemd starts the unit with."""
    out = host.check_output(f"systemctl show -p ExecStart --value {unit}")
    found = re.search(r"argv\[\]=(.*?) ;", out)
    return found.group(1) if found else out


def celery_inspect(host, what: str, timeout: float = 90):
    """`celery inspect <what>` of this host's worker, as the airflow user with
    the deployed config; the worker's reply (parsed JSON)."""
    name = host.check_output("hostname")
    command = celery_inspect_command(host, f"{what} --json")
    deadline = time.monotonic() + timeout
    while True:
        result = host.run(command)
        if result.rc == 0:
            replies = [line for line in result.stdout.splitlines() if line.startswith("{")]
            if replies:
                return json.loads(replies[-1])[f"celery@{name}"]
        assert time.monotonic() < deadline, f"celery inspect {what}: rc={result.rc} {result.stdout[-500:]} {result.stderr[-1500:]}"
        time.sleep(3)


def token_status(base_url: str, username: str, password: str, verify: str | None = None) -> int:
    """HTTP status of /auth/token for these credentials."""
    resp = requests.post(
        f"{base_url}/auth/token",
        json={"username": username, "password": password},
        timeout=API_TIMEOUT,
        verify=verify or tls_trust() or True,
    )
    return resp.status_code


def run_until_killed(extra_vars: dict, inventory: str, after: re.Pattern, timeout: float = 900) -> tuple[bool, list[str]]:
    """site.yml as airflow_testlib.run_playbook runs it, but streamed: SIGKILL
    the whole process group as soon as the task after the task `after`
    starts. Returns (killed there, the output lines read)."""
    env = playbook_env(PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        ["ansible-playbook", "-i", inventory, str(ROOT / "playbooks/site.yml"), "-e", json.dumps(extra_vars)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: ansible's forks and their docker exec die with it
    )

    def kill() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    watchdog = threading.Timer(timeout, kill)  # bounds the read loop below
    watchdog.start()
    lines: list[str] = []
    written = killed = False
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if written and line.startswith(NEXT_TASK):
                kill()
                killed = True
                break
            if after.match(line):
                written = True
    finally:
        watchdog.cancel()
        if not killed and proc.poll() is None:
            kill()
        proc.stdout.close()
        proc.wait(timeout=60)
    return killed, lines


# --- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def client(api_hosts, secrets) -> AirflowAPI:
    """The admin's client of the api-server, patient with a loaded machine."""
    return admin_api(api_hosts[0], timeout=API_TIMEOUT)


@pytest.fixture(autouse=True)
def leaves_the_deployment_as_found(host):
    before = deployed_state(host)
    yield
    assert deployed_state(host) == before, "the test left the deployment changed (config, units, release or markers)"


# --- tests ------------------------------------------------------------------


def test_virtualenv_task_runs_on_the_celery_worker(host, client):
    """PythonVirtualenvOperator with no requirements and no system site
    packages: the operator builds a fresh venv with the `python` on the
    worker unit's PATH and runs the callable there."""
    assert_virtualenv_task(client, host)


def test_changes_at_once_survive_a_killed_run_then_nothing_then_worker_only(host, secrets, tmp_path):
    """One run changes the admin user, [core] options, the worker's queues and
    concurrency and airflow_config at once, lets Redis accept a second
    password (redis_password_next) and takes the host out of the inventory's
    monitoring group. It is killed (SIGKILL, whole process group) right after
    it wrote Redis's users file, which comes after it recorded what must
    restart and wrote the new airflow.cfg: the restart markers persist and
    Redis still refuses the new password; the next run (whose files no longer
    differ) restarts every component onto the new airflow.cfg, clears the
    markers and has Redis load its users (live: no restart). Each change
    shows on the host or through the API (Prometheus, collectd and every
    exporter stopped and disabled, Airflow's StatsD off); the same run again
    changes nothing; taking back only the worker settings and
    core.parallelism (an option only the scheduler reads) restarts only the
    worker and the scheduler; in the same run a login for flower restarts
    flower alone, a new scheduler health port the scheduler alone, and a
    PostgreSQL setting that a reload applies (work_mem) is applied without a
    restart of PostgreSQL. With the monitoring group back, the metrics run
    and Prometheus scrapes again, Redis refuses the second password again,
    and a re-run changes nothing."""
    password = secrets["vault_airflow_admin_password"]
    redis_next = "next-" + os.urandom(12).hex()
    unmonitored = inventory_without("monitoring", tmp_path)
    worker_argv = exec_argv(host, "airflow-worker")
    changes = {
        "airflow_admin_username": "ops",
        "airflow_dags_are_paused_at_creation": False,
        "airflow_worker_concurrency": 3,
        "airflow_worker_queues": ["default", "extra"],
        "airflow_config": {"core": {"parallelism": 40}},
        "redis_password_next": redis_next,
    }
    try:
        assert_killed_after(changes, REDIS_WRITE_TASK, unmonitored)
        assert cfg(host).get("core", "parallelism", fallback=None) == "40", "airflow.cfg not written before the kill"
        pending = restart_markers(host)
        print(f"restart markers after the kill: {pending}")
        assert pending, f"no restart marker in {RESTART_PENDING} after the kill"
        assert host.file(USERS_ACL).content_string.count("#") == 2, "the users file not written before the kill"
        assert "WRONGPASS" in redis_answers(host, redis_next), "Redis loaded the users before the kill"
        redis_since = unit_active_since(host, "redis-server")

        changed = site(changes, unmonitored)
        assert_ok(changed, "site.yml with the changes, after the killed run")
        assert changed_count(changed) > 0
        assert restart_markers(host) == [], "restart markers left after a successful run"
        assert redis_answers(host, redis_next) == "PONG", "the users file a killed run wrote was not loaded by the next run"
        assert unit_active_since(host, "redis-server") == redis_since, "Redis restarted to load its users (ACL LOAD loads them live)"
        cfg_written = file_mtime(host, CFG)
        stale = {unit: when for unit, when in started_at(host).items() if when <= cfg_written}
        assert not stale, f"still running the old config (started before airflow.cfg was written at {cfg_written}): {stale}"

        ops = AirflowAPI(api_url(host), "ops", password, timeout=API_TIMEOUT)  # asserts /auth/token answers 200/201
        assert ops.get("/api/v2/dags").status_code == 200
        parsed = cfg(host)
        assert parsed.get("core", "dags_are_paused_at_creation") == "False"
        assert parsed.get("core", "parallelism") == "40"
        argv = exec_argv(host, "airflow-worker")
        assert re.search(r"--queues default,extra( |$)", argv) and re.search(r"--concurrency 3( |$)", argv), argv
        assert sorted(queue["name"] for queue in celery_inspect(host, "active_queues")) == ["default", "extra"]
        assert celery_inspect(host, "stats")["pool"]["max-concurrency"] == 3
        left = {unit: (host.service(unit).is_running, enablement(host, unit)) for unit in METRICS_UNITS}
        assert all(not running and state != "enabled" for running, state in left.values()), f"metrics still running or enabled: {left}"
        assert parsed.get("metrics", "statsd_on").lower() == "false", "Airflow still sends StatsD without a monitoring host"

        again = site(changes, unmonitored)
        assert_unchanged(again, "the same changes again")

        # the worker settings (its unit) and core.parallelism (read by the
        # scheduler alone) back to the defaults: only those two restart
        units_before = active_since(host)
        postgres_since = metadata_sql(host, "SELECT pg_postmaster_start_time()")
        back = site({k: v for k, v in changes.items() if not k.startswith("airflow_worker_") and k != "airflow_config"}
                    | {"postgresql_settings": {"max_connections": 200, "shared_buffers": "256MB", "work_mem": "12MB"},
                       "airflow_flower_basic_auth": FLOWER_LOGIN, "airflow_scheduler_health_port": 8975},
                    unmonitored)
        assert_ok(back, "site.yml with the worker settings and core.parallelism back to the defaults, a flower login, "
                        "the scheduler's health on 8975 and work_mem 12MB")
        units_now = active_since(host)
        restarted = sorted(u for u in UNITS if units_now[u] != units_before[u])
        assert restarted == ["airflow-flower", "airflow-scheduler", "airflow-worker"], f"restarted {restarted}"
        assert flower_status(host) == 401 and flower_status(host, FLOWER_LOGIN) == 200, "flower does not ask for its login"
        assert host.run("curl -sf --max-time 10 http://127.0.0.1:8975/health").rc == 0, "no scheduler health on 8975"
        assert metadata_sql(host, "SHOW work_mem") == "12MB", "the new work_mem is not applied"
        assert metadata_sql(host, "SELECT pg_postmaster_start_time()") == postgres_since, "PostgreSQL restarted for work_mem"
        assert not cfg(host).has_option("core", "parallelism")
        assert exec_argv(host, "airflow-worker") == worker_argv
    finally:
        restored = site()
    assert_ok(restored, "restore the defaults")
    assert "PONG" not in redis_answers(host, redis_next), "Redis still accepts redis_password_next"
    assert redis_answers(host, secrets["vault_redis_password"]) == "PONG"
    assert metadata_sql(host, "SHOW work_mem") == "4MB", "work_mem not back to PostgreSQL's default"
    assert flower_status(host) == 200, "flower still asks for a login"
    assert host.run("curl -sf --max-time 10 http://127.0.0.1:8974/health").rc == 0, "no scheduler health on 8974"
    parsed = cfg(host)
    assert not parsed.has_option("core", "parallelism")
    assert parsed.get("core", "dags_are_paused_at_creation") == "True"
    assert token_status(api_url(host), "admin", password) in (200, 201)
    for unit in METRICS_UNITS:
        assert host.service(unit).is_running and enablement(host, unit) == "enabled", f"{unit} not back with the monitoring group"
    assert parsed.get("metrics", "statsd_on").lower() == "true", "StatsD not back on with the monitoring group"
    wait_for_series(f"http://{address(host)}:{PROMETHEUS_PORT}", 'up{job="node"} == 1')
    assert_unchanged(site(), "a re-run with the monitoring group back")


FLOWER_LOGIN = "ops:" + os.urandom(8).hex()


def flower_status(host, login: str = "") -> int:
    """The HTTP status of flower's workers page (behind its login, if any)."""
    user = f"-u {login} " if login else ""
    return int(host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {user}http://127.0.0.1:5555/workers"))


def assert_data_store_ports(host, postgresql: int, redis: int) -> None:
    """PostgreSQL and Redis listen on these ports alone, and Airflow's URLs
    and the exporters (the monitoring role) reach them there."""
    for port, old in ((postgresql, 5432), (redis, 6379)):
        assert listeners(host, port), f"nothing listens on {port}"
        if port != old:
            assert listeners(host, old) == [], f"something still listens on {old}"
    deployed = cfg(host)
    for section, option, port in (("database", "sql_alchemy_conn", postgresql), ("celery", "result_backend", postgresql),
                                  ("celery", "broker_url", redis)):
        assert f":{port}/" in deployed.get(section, option), f"[{section}] {option} does not use port {port}"
    exporters = {"postgres": (f"port={postgresql} ", 9187, "pg_up"), "redis": (f"redis://127.0.0.1:{redis}", 9121, "redis_up")}
    for name, (wanted, port, up) in exporters.items():
        assert wanted in host.file(f"/etc/default/prometheus-{name}-exporter").content_string, f"the {name} exporter does not use {wanted}"
        metrics = host.check_output(f"curl -sf --max-time 10 http://{address(host)}:{port}/metrics")
        assert re.search(rf"^{up} 1$", metrics, re.MULTILINE), f"the {name} exporter does not reach its data store ({up})"


QUOTED = "airflow's \\metadata"  # a quote and a backslash, each escaped in postgresql.conf
REDIS_CONF = "/etc/redis/redis.conf"
PG_EXPORTER_DEFAULTS = "/etc/default/prometheus-postgres-exporter"


def new_ca(tmp_path: Path) -> str:
    """A new self-signed CA certificate (PEM)."""
    key, crt = tmp_path / "ca.key", tmp_path / "ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
         "-out", str(crt), "-days", "2", "-subj", f"/CN=airflow-vm test CA {os.urandom(4).hex()}"],
        check=True, capture_output=True)
    return crt.read_text()


def ca_trusted(host, pem: str) -> tuple[list[str], bool]:
    """The role's CA files that hold this certificate, and whether the OS bundle does."""
    body = max(pem.splitlines(), key=len)  # a base64 line of this certificate alone
    files = host.check_output("grep -lF -- %s " + CA_DIR + "/airflow-extra-*.crt || true", body).split()
    return files, body in host.file(CA_BUNDLE).content_string


def assert_killed_after(changes: dict, task: re.Pattern, inventory: str = INVENTORY) -> None:
    """site.yml with `changes`, killed once `task` is done (run_until_killed)."""
    killed, lines = run_until_killed(changes, inventory, after=task)
    assert killed, f"the run never got past {task.pattern}:\n" + "\n".join(lines[-60:])
    print(f"\nkilled at: {lines[-1]}")


def file_mtime(host, path: str) -> float:
    return float(host.check_output(f"stat -c %.6Y {path}"))


def test_ports_tls_ca_and_admin_password_change_and_come_back(host, secrets, tmp_path):
    """One run moves the api-server to 8081 with TLS on, flower to 5556,
    PostgreSQL to 5433 (with a server setting whose value holds a quote) and
    Redis to 6380 (after three runs of the same changes killed right after
    they wrote PostgreSQL's, Redis's and the exporters' files: each next run
    restarts the service a killed run left older than its files, though it
    writes nothing new for it), and gives the existing admin a new
    airflow_admin_password (starting with "-", which a CLI could take for an
    option) and one more CA in airflow_ca_certificates: the api-server
    answers HTTPS there (a self-signed certificate the host's trust bundle
    holds), the added CA is trusted (its file, the OS bundle), nothing
    listens on the old ports, the
    execution API URL, Airflow's database and broker URLs and the exporters
    follow, the new password logs in and the old one is refused, a Celery
    run succeeds over it; then back to plain HTTP on 8080 and 5555, 5432,
    6379, the vault's password and the CAs of before: no TLS file left, the
    CA taken out of the list no longer trusted (a revoked proxy CA must not
    stay trusted), and a re-run changes nothing."""
    old = secrets["vault_airflow_admin_password"]
    new = "-changed-" + os.urandom(12).hex()
    ip = address(host)
    hostname = host.check_output("hostname")
    tls_dir = "/etc/airflow/tls"
    moved = f"https://{ip}:8081"
    ca = new_ca(tmp_path)
    present = sorted(Path(CA_DIR).glob("*.crt"))  # what group_vars passes
    changes = {"airflow_api_port": 8081, "airflow_flower_port": 5556, "airflow_api_tls": True, "airflow_admin_password": new,
               "postgresql_port": 5433, "redis_port": 6380,
               "postgresql_settings": {"max_connections": 200, "shared_buffers": "256MB", "cluster_name": QUOTED},
               "airflow_ca_certificates": [path.read_text() for path in present] + [ca]}
    try:
        # Runs that stop right after they wrote a service's files, before its
        # restart: the next run finds the service older than its files and
        # restarts it, though it writes nothing new for it.
        assert_killed_after(changes, PG_WRITE_TASK)
        pg_conf = f"/etc/postgresql/{postgresql_major()}/main/conf.d/50-ansible.conf"
        assert "port = '5433'" in host.file(pg_conf).content_string and listeners(host, 5432), "PostgreSQL moved before the kill"
        assert_killed_after(changes, REDIS_WRITE_TASK)
        assert listeners(host, 5433) and not listeners(host, 5432), "PostgreSQL not restarted onto the port a killed run wrote"
        assert "\nport 6380\n" in host.file(REDIS_CONF).content_string and listeners(host, 6379), "Redis moved before the kill"
        assert_killed_after(changes, EXPORTERS_WRITE_TASK)
        assert listeners(host, 6380) and not listeners(host, 6379), "Redis not restarted onto the port a killed run wrote"
        assert "port=5433 " in host.file(PG_EXPORTER_DEFAULTS).content_string
        exporter = "prometheus-postgres-exporter"
        assert started_at(host, [exporter])[exporter] < file_mtime(host, PG_EXPORTER_DEFAULTS), "the exporter restarted before the kill"
        with command_lines(host) as seen:
            changed = site(changes)
        assert_ok(changed, "site.yml with the api-server on 8081 over TLS, flower on 5556, data stores on 5433 and 6380, a new admin password")
        # the password went to the CLI, but never on a command line (ps)
        assert [line for line in seen if "users reset-password" in line], "the watch missed the command that set the password"
        assert not [line for line in seen if new in line], "the new admin password was on a command line"
        with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as trust:
            trust.write(host.file(f"{tls_dir}/api-trust.pem").content_string)
        resp = requests.get(f"{moved}/api/v2/version", verify=trust.name, timeout=API_TIMEOUT)
        assert resp.status_code == 200, resp.text[:300]
        with pytest.raises(requests.RequestException):
            requests.get(f"http://{ip}:8081/api/v2/version", timeout=10).raise_for_status()
        assert listeners(host, 8080) == [], "the api-server still listens on 8080"
        assert host.run("curl -sf --max-time 10 http://127.0.0.1:5556/healthcheck").rc == 0, "flower not on 5556"
        assert listeners(host, 5555) == [], "flower still listens on 5555"
        assert cfg(host).get("core", "execution_api_server_url") == f"{moved}/execution/"
        assert_data_store_ports(host, 5433, 6380)
        assert metadata_sql(host, "SHOW cluster_name", 5433) == QUOTED
        files, in_bundle = ca_trusted(host, ca)
        assert len(files) == 1 and in_bundle, f"the added CA is not trusted: files {files}, in {CA_BUNDLE}: {in_bundle}"

        assert token_status(moved, "admin", old, trust.name) in (401, 403), "the old admin password still logs in"
        client = AirflowAPI(moved, "admin", new, timeout=API_TIMEOUT, verify=trust.name)  # asserts the new one logs in
        run, tis = client.run_dag("smoke_celery")
        assert run["state"] == "success", [(ti["task_id"], ti["state"]) for ti in tis]
        assert {ti["hostname"] for ti in tis} == {hostname}
        # nothing is left stale: the same changes again change nothing
        assert_unchanged(site(changes), "the same changes again, after the runs killed and the one that healed them")
    finally:
        restored = site()
    assert_ok(restored, "back to plain HTTP on 8080, flower on 5555, the vault's admin password")
    assert http_get(f"http://{ip}:8080/api/v2/version", timeout=API_TIMEOUT).status_code == 200
    assert host.run("curl -sf --max-time 10 http://127.0.0.1:5555/healthcheck").rc == 0, "flower not back on 5555"
    assert listeners(host, 8081) == [], "the api-server still listens on 8081"
    assert listeners(host, 5556) == [], "flower still listens on 5556"
    assert cfg(host).get("core", "execution_api_server_url") == f"http://{ip}:8080/execution/"
    assert_data_store_ports(host, 5432, 6379)
    assert re.fullmatch(r"\d+/main", metadata_sql(host, "SHOW cluster_name")), "cluster_name not back to Debian's"
    assert not host.file(tls_dir).exists, f"{tls_dir} left behind with TLS off"
    files, in_bundle = ca_trusted(host, ca)
    assert not files and not in_bundle, f"the CA taken out of the list is still trusted: files {files}, in {CA_BUNDLE}: {in_bundle}"
    assert token_status(api_url(host), "admin", old) in (200, 201), "the vault's admin password does not log in again"
    assert token_status(api_url(host), "admin", new) in (401, 403), "the changed password still logs in"
    assert_unchanged(site(), "a re-run after the restore")
