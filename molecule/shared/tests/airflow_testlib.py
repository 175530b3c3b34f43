"""Helpers and fixtures shared by the molecule scenarios' testinfra suites.

Everything here talks to the real services: the Airflow REST API of the
deployed api-server (over the test network, from the controller), systemd,
PostgreSQL and Redis inside the test "VMs".
"""

from __future__ import annotations

from dataclasses import dataclass
import configparser
import contextlib
import functools
import uuid
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
import testinfra
import testinfra.utils.ansible_runner
import yaml
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

SHARED = Path(__file__).resolve().parent.parent
ROOT = SHARED.parent.parent
# molecule's inventory directory: its own hosts file plus the linked group
# tree (molecule/shared/inventory/hosts.yml), group_vars and host_vars.
# MOLECULE_INVENTORY_FILE alone lacks the parent group `airflow`.
INVENTORY = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
COMPONENT_UNITS = {
    "airflow_api_server": "airflow-api-server",
    "airflow_scheduler": "airflow-scheduler",
    "airflow_dag_processor": "airflow-dag-processor",
    "airflow_triggerer": "airflow-triggerer",
    "airflow_worker": "airflow-worker",
    "airflow_flower": "airflow-flower",
}
# what the role writes with airflow_api_tls: the api-servers' certificates
TLS_TRUST = "/etc/airflow/tls/api-trust.pem"
# the role's extra CA certificates go to CA_DIR; update-ca-certificates writes CA_BUNDLE (Debian's OS trust store)
CA_DIR = "/usr/local/share/ca-certificates"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def deployed_lock(version: str, minor: str) -> Path:
    """The lock a host of this scenario installs: the inventory's (Airflow plus
    airflow_extra_requirements, in the role's default airflow_lock_dir next to
    molecule's inventory) when the scenario has one, else the role's."""
    name = f"airflow-{version}-py{minor}.txt"
    inventory_lock = Path(INVENTORY) / "locks" / name
    return inventory_lock if inventory_lock.exists() else ROOT / "roles/airflow/files/locks" / name


# the lowest ansible-core that meta/runtime.yml claims, and what it runs with:
# galaxy.yml's dependencies and the test bed's own collections (`make test`
# builds all three; molecule/cluster runs every step with them)
LOWEST_BIN = ROOT / ".venv-lowest/bin"
DECLARED = ROOT / ".cache/collections-declared"
LOWEST_COLLECTIONS = f"{DECLARED}:{ROOT / '.cache/collections-testbed'}"


def lowest_ansible_core(ansible_playbook: str) -> None:
    """Assert that this ansible-playbook is the lowest ansible-core that
    meta/runtime.yml claims and that the declared collection folder holds
    exactly galaxy.yml's dependencies and this collection (the checkout, linked)."""
    claim = re.search(r'^requires_ansible: ">=([0-9.]+)"$', (ROOT / "meta/runtime.yml").read_text(), re.M)
    assert claim, 'meta/runtime.yml: requires_ansible must read ">=X.Y.Z"'
    out = subprocess.run([ansible_playbook, "--version"], capture_output=True, text=True, check=True).stdout
    version = re.search(r"\[core ([0-9.]+)\]", out).group(1)
    assert version == claim.group(1), f"{ansible_playbook} is ansible-core {version}, requires_ansible claims >={claim.group(1)}"
    declared = sorted([*yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"], "airflow_ops.airflow_vm"])
    present = sorted(f"{path.parent.name}.{path.name}" for path in (DECLARED / "ansible_collections").glob("*/*"))
    assert present == declared, f"{DECLARED} holds {present}, galaxy.yml depends on {declared}"


def vault() -> dict:
    """The decrypted secrets of the test bed (molecule/shared/group_vars/all/vault.yml)."""
    password = Path(os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE", SHARED / ".vault_pass")).read_bytes().strip()
    lib = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))])
    data = lib.decrypt((SHARED / "group_vars/all/vault.yml").read_bytes())
    return yaml.safe_load(data)


def playbook_env(**extra: str) -> dict[str, str]:
    """The environment of ansible-playbook runs against the test VMs."""
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_GATHERING="explicit",
        ANSIBLE_PIPELINING="true",
        # a fetch that would read a file through slurp fails (molecule/shared/library/slurp.py)
        ANSIBLE_LIBRARY=str(SHARED / "library"),
        **extra,
    )
    env.setdefault("ANSIBLE_VAULT_PASSWORD_FILE", str(SHARED / ".vault_pass"))
    return env


PLAYBOOK_TIMEOUT = 900


def run_playbook(
    playbook: str,
    extra_vars: dict,
    *options: str,
    inventory: str | None = None,
    ansible_playbook: str = "ansible-playbook",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """ansible-playbook (a path relative to the repo) against the test VMs, as a user runs it
    (another ansible-playbook and more environment if given)."""
    argv = [ansible_playbook, "-i", inventory or INVENTORY, str(ROOT / playbook), "-e", json.dumps(extra_vars), *options]
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=playbook_env(**(env or {})), timeout=PLAYBOOK_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as timeout:
        # what the run was doing when it was stopped (the task timings of profile_tasks)
        output = timeout.stdout.decode() if isinstance(timeout.stdout, bytes) else timeout.stdout or ""
        tail = "\n".join(output.splitlines()[-80:])
        raise AssertionError(f"{playbook} still running after {PLAYBOOK_TIMEOUT} s; its output ended with:\n{tail}") from None


def changed_count(result: subprocess.CompletedProcess) -> int:
    """Sum of changed=N over the PLAY RECAP of a run."""
    return sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))


def assert_ok(result: subprocess.CompletedProcess, what: str = "the run") -> None:
    """The run succeeded; if not, the message has its exit code and the end of its output."""
    assert result.returncode == 0, f"{what}: rc={result.returncode}, last lines:\n{playbook_tail(result)}"


def assert_unchanged(result: subprocess.CompletedProcess, what: str = "the re-run") -> None:
    """The run succeeded and changed nothing; if it changed something, the message names each task and host."""
    assert_ok(result, what)
    assert changed_count(result) == 0, (
        f"{what}: changed={changed_count(result)} in {changed_tasks(result)}\n{playbook_tail(result)}"
    )


def inventory_groups() -> dict[str, list[str]]:
    """Group -> hosts of molecule's inventory; every group the tests use must have hosts."""
    runner = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
    groups = {group: runner.get_hosts(group) for group in [*COMPONENT_UNITS, "postgresql", "redis", "airflow"]}
    assert groups["airflow"] and groups["postgresql"] and groups["redis"], f"inventory {INVENTORY} lacks groups: {groups}"
    return groups


def address(host) -> str:
    """The test-network address of a test VM (what other hosts use)."""
    return host.interface("eth0").addresses[0]


@functools.cache
def tls_trust() -> str | None:
    """With TLS on: a controller copy of the trust bundle the role wrote (what
    Airflow's clients verify the api-servers with); None with TLS off."""
    host = host_of(inventory_groups()["airflow_api_server"][0])
    trust = host.file(TLS_TRUST)
    if not trust.exists:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as copy:
        copy.write(trust.content_string)
    return copy.name


def api_url(host) -> str:
    """Base URL of the api-server on host, as other hosts reach it."""
    return f"{'https' if tls_trust() else 'http'}://{address(host)}:8080"


def http_get(url: str, **kwargs) -> requests.Response:
    """GET that verifies the api-servers' certificates with the deployed trust."""
    kwargs.setdefault("timeout", 10)
    return requests.get(url, verify=tls_trust() or True, **kwargs)


class AirflowAPI:
    """A minimal client of the Airflow 3 REST API, authenticated with a JWT from /auth/token."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 15, verify: str | bool | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        # per request: a session's verify loses to REQUESTS_CA_BUNDLE
        self.verify = verify if verify is not None else tls_trust() or True
        self.username, self.password = username, password
        self.relogin()

    def relogin(self) -> None:
        """A new token for this client (e.g. after the api-server restarted)."""
        self.token = self.issue_token(self.username, self.password)
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def issue_token(self, username: str, password: str) -> str:
        resp = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": username, "password": password},
            timeout=self.timeout,
            verify=self.verify,
        )
        assert resp.status_code in (200, 201), f"/auth/token answered {resp.status_code}: {resp.text[:300]}"
        return resp.json()["access_token"]

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(f"{self.base_url}{path}", timeout=self.timeout, verify=self.verify, **kwargs)

    def post(self, path: str, body: dict) -> requests.Response:
        return self.session.post(f"{self.base_url}{path}", json=body, timeout=self.timeout, verify=self.verify)

    def patch(self, path: str, body: dict) -> requests.Response:
        return self.session.patch(f"{self.base_url}{path}", json=body, timeout=self.timeout, verify=self.verify)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> dict:
        """Wait until the dag-processor has parsed dag_id; return the DAG."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.get(f"/api/v2/dags/{dag_id}")
            if resp.status_code == 200:
                return resp.json()
            assert time.monotonic() < deadline, f"DAG {dag_id} not parsed within {timeout} s: {resp.status_code}"
            time.sleep(3)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Unpause and trigger dag_id (once parsed); return the run id."""
        self.wait_for_dag(dag_id)
        resp = self.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
        assert resp.status_code == 200, resp.text
        resp = self.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        assert resp.status_code == 200, f"trigger answered {resp.status_code}: {resp.text[:300]}"
        return resp.json()["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> tuple[dict, list[dict]]:
        """Wait for a run to end; return the run and its task instances."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()
                if run["state"] in ("success", "failed"):
                    break
            except (requests.ConnectionError, ValueError):
                pass  # an api-server restarting during the wait
            assert time.monotonic() < deadline, f"run {run_id} not finished after {timeout} s"
            time.sleep(3)
        tis = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        return run, tis

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 300) -> tuple[dict, list[dict]]:
        """Trigger dag_id and wait for the run to end; return the run and its task instances."""
        return self.wait_run(dag_id, self.trigger(dag_id, conf), timeout)

    def xcom(self, dag_id: str, run_id: str, task_id: str):
        resp = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
        assert resp.status_code == 200, resp.text
        return resp.json()["value"]


@pytest.fixture(scope="session")
def secrets() -> dict:
    return vault()


@pytest.fixture(scope="session")
def groups() -> dict[str, list[str]]:
    return inventory_groups()


def host_of(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="session")
def hosts(groups) -> dict:
    """Name -> testinfra host, for each host of the inventory's groups."""
    return {name: host_of(name) for names in groups.values() for name in names}


@functools.cache
def postgresql_major() -> str:
    """The PostgreSQL the postgresql role installs on the data host's Debian
    release (15 on Debian 12, 17 on Debian 13: the role's vars file)."""
    host = host_of(inventory_groups()["postgresql"][0])
    debian = host.system_info.release.split(".")[0]
    return str(yaml.safe_load((ROOT / f"roles/postgresql/vars/Debian-{debian}.yml").read_text())["_postgresql_version"])


@pytest.fixture(scope="session")
def api_hosts(groups) -> list:
    return [host_of(name) for name in groups["airflow_api_server"]]


def admin_api(host, password: str | None = None, **kwargs) -> AirflowAPI:
    """A new client of host's api-server, logged in as the admin (with the
    vault's password unless another is given): after a restart, a new login."""
    return AirflowAPI(api_url(host), "admin", password or vault()["vault_airflow_admin_password"], **kwargs)


@pytest.fixture(scope="session")
def api(api_hosts) -> AirflowAPI:
    """Client of the first api-server, logged in as the admin from the vault."""
    return admin_api(api_hosts[0])


# --- Day-2 helpers: upgrades, rolling restarts, rollback, the UI (molecule/upgrade) ---

AIRFLOW_INSTALL_ROOT = "/opt/airflow"
CURRENT = f"{AIRFLOW_INSTALL_ROOT}/current"
CFG = "/etc/airflow/airflow.cfg"
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium (molecule/shared/ensure-browser.sh)


def wait_until(check, timeout: float, what: str, interval: float = 2) -> float:
    """Poll check() until it returns true; return the seconds it took. Errors
    of a service that is (re)starting count as "not yet"."""
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except (requests.RequestException, ValueError, KeyError, AssertionError, RuntimeError):
            pass
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        time.sleep(interval)


def api_healthy(base_url: str, timeout: float = 0.9) -> bool:
    """An api-server that serves: /api/v2/monitor/health answers 200 and its
    metadatabase is healthy."""
    try:
        resp = http_get(f"{base_url}/api/v2/monitor/health", timeout=timeout)
        return resp.status_code == 200 and resp.json()["metadatabase"]["status"] == "healthy"
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return False


class HealthProbe:
    """Probes every api-server's health once a second in a background thread
    while a playbook runs (a context manager); counts the seconds in which
    none of them was healthy. Stops by itself after max_seconds."""

    def __init__(self, base_urls: list[str], interval: float = 1.0, max_seconds: float = 1800,
                 request_timeout: float = 5.0):
        import threading

        tls_trust()  # resolved here: the probe thread must not call testinfra
        self.base_urls = list(base_urls)
        self.interval = interval
        self.max_seconds = max_seconds
        # a slow answer on a busy CPU is still an answer; connection refused
        # fails at once, and an overrun stands for the seconds it took
        self.request_timeout = request_timeout
        # one entry per second: {url: healthy}
        self.samples: list[dict[str, bool]] = []
        self.started = 0.0  # CLOCK_MONOTONIC of the first sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-health-probe", daemon=True)

    def _probe_all(self, pool) -> dict[str, bool]:
        futures = {url: pool.submit(api_healthy, url, self.request_timeout) for url in self.base_urls}
        return {url: future.result() for url, future in futures.items()}

    def _run(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        start = self.started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(self.base_urls)) as pool:
            while not self._stop.is_set() and time.monotonic() - start < self.max_seconds:
                result = self._probe_all(pool)
                # a probe that overran its second stands for the seconds it took
                due = int((time.monotonic() - start) / self.interval) + 1
                while len(self.samples) < due:
                    self.samples.append(result)
                self._stop.wait(max(0.0, start + len(self.samples) * self.interval - time.monotonic()))

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def gap_seconds(self) -> int:
        """Seconds in which no api-server was healthy."""
        return sum(1 for sample in self.samples if not any(sample.values()))

    @property
    def longest_gap(self) -> int:
        longest = current = 0
        for sample in self.samples:
            current = 0 if any(sample.values()) else current + 1
            longest = max(longest, current)
        return longest

    def longest_gap_window(self) -> tuple[float, float] | None:
        """(start, end) of the longest gap in CLOCK_MONOTONIC seconds, the
        clock of the test VMs' systemd timestamps too (containers share the
        kernel's); None without a gap."""
        best, current = None, None
        for index, sample in enumerate(self.samples):
            if any(sample.values()):
                current = None
                continue
            current = (current[0], index + 1) if current else (index, index + 1)
            if best is None or current[1] - current[0] > best[1] - best[0]:
                best = current
        if best is None:
            return None
        return self.started + best[0] * self.interval, self.started + best[1] * self.interval

    def timeline(self) -> str:
        """One character per second: '.' all healthy, digit = how many were
        down (some up), 'X' none healthy."""
        chars = []
        for sample in self.samples:
            down = sum(1 for ok in sample.values() if not ok)
            chars.append("." if down == 0 else "X" if down == len(sample) else str(down))
        return "".join(chars)

    def summary(self) -> str:
        return (
            f"{len(self.samples)} s probed, {self.gap_seconds} s without a healthy api-server "
            f"(longest {self.longest_gap} s): {self.timeline()}"
        )


def wait_task_running(api: AirflowAPI, dag_id: str, run_id: str, task_id: str, timeout: float = 300) -> None:
    """Wait until the task runs on a worker (so that what follows happens during it)."""

    def running() -> bool:
        state = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}").json()["state"]
        assert state not in ("success", "failed", "upstream_failed"), f"{dag_id}.{task_id} already {state}"
        return state == "running"

    deadline = time.monotonic() + timeout
    while True:
        try:
            if running():
                return
        except (ValueError, KeyError):
            pass
        assert time.monotonic() < deadline, f"{dag_id}.{task_id} of {run_id} not running within {timeout} s"
        time.sleep(2)



@dataclass
class StoredSecrets:
    """A Variable and a Connection stored (encrypted with the Fernet key) through the API."""

    variable: str
    value: str
    connection: str
    password: str


def store_secrets(api: AirflowAPI, prefix: str) -> StoredSecrets:
    stored = StoredSecrets(
        f"{prefix}_{uuid.uuid4().hex[:8]}", f"value-{uuid.uuid4().hex}", f"{prefix}_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    )
    resp = api.post("/api/v2/variables", {"key": stored.variable, "value": stored.value})
    assert resp.status_code == 201, resp.text
    resp = api.post(
        "/api/v2/connections",
        {"connection_id": stored.connection, "conn_type": "generic", "host": "db.invalid", "password": stored.password},
    )
    assert resp.status_code == 201, resp.text
    return stored


def assert_task_reads(api: AirflowAPI, stored: StoredSecrets) -> None:
    """A smoke_secrets task reads the Variable and the Connection's password (SHA-256 digests compared)."""
    run, tis = api.run_dag("smoke_secrets", {"variable": stored.variable, "connection": stored.connection})
    assert run["state"] == "success", [(ti["task_id"], ti["state"]) for ti in tis]
    digests = api.xcom("smoke_secrets", run["dag_run_id"], "read")
    want = {"variable_sha256": stored.value, "password_sha256": stored.password}
    assert digests == {key: hashlib.sha256(text.encode()).hexdigest() for key, text in want.items()}, digests

def assert_no_import_errors(api: AirflowAPI) -> None:
    """Every DAG file and every Airflow plugin the deployment shipped imports
    (plugins/ is also the collection's Ansible plugins folder: .airflowignore
    must keep those out of Airflow's plugin loader)."""
    for path in ("/api/v2/importErrors", "/api/v2/plugins/importErrors"):
        resp = api.get(path)
        assert resp.status_code == 200, f"{path} answered {resp.status_code}: {resp.text[:300]}"
        assert resp.json()["total_entries"] == 0, f"{path}: {resp.json()['import_errors']}"


def assert_virtualenv_task(client: AirflowAPI, host) -> dict:
    """Run dags/smoke_virtualenv.py (a PythonVirtualenvOperator, no
    requirements, no system site packages) on the Celery worker of `host`:
    the operator builds a fresh venv from the `python` on the worker unit's
    PATH (the current release's) and runs the callable there. Returns what
    the callable saw."""
    run, tis = client.run_dag("smoke_virtualenv")
    states = {ti["task_id"]: ti["state"] for ti in tis}
    if run["state"] != "success":
        log = client.get(f"/api/v2/dags/smoke_virtualenv/dagRuns/{run['dag_run_id']}/taskInstances/in_venv/logs/1")
        raise AssertionError(f"run ended {run['state']}: {states}\n{log.text[-4000:]}")
    hostname = host.check_output("hostname")
    assert [(ti["task_id"], ti["queue"], ti["hostname"]) for ti in tis] == [("in_venv", "default", hostname)]

    venv = client.xcom("smoke_virtualenv", run["dag_run_id"], "in_venv")
    print(f"\ntask virtualenv: {venv}")
    assert venv["hostname"] == hostname
    assert venv["prefix"] != venv["base_prefix"], "the callable did not run in a virtualenv"
    assert not venv["prefix"].startswith("/opt/airflow"), "the callable ran in the release, not a fresh virtualenv"
    assert venv["executable"].startswith(venv["prefix"])
    assert venv["airflow_importable"] is False, "system site packages leaked into the virtualenv"
    host_python = host.check_output(f"{AIRFLOW_INSTALL_ROOT}/current/bin/python -c 'import sys; print(sys.version)'")
    assert venv["version"] == host_python, "the virtualenv runs another interpreter than the release"
    return venv


def host_monotonic(host) -> float:
    """CLOCK_MONOTONIC of a test VM (the clock of systemd's *TimestampMonotonic), in seconds."""
    return float(host.check_output("python3 -c 'import time; print(time.monotonic())'"))


RESTART_PENDING = "/opt/airflow/restart-pending"


def restart_markers(host) -> list[str]:
    """The components with a pending restart: a file each in restart-pending/
    (the folder comes with the first marker)."""
    folder = host.file(RESTART_PENDING)
    if not folder.exists:
        return []
    assert folder.is_directory, f"{RESTART_PENDING} is not a folder"
    return sorted(host.check_output(f"ls -A {RESTART_PENDING}").split())


def listeners(host, port: int) -> list[str]:
    """Every local address:port that listens on TCP `port` (IPv4 and IPv6)."""
    return sorted(host.check_output(f"ss -Hltn 'sport = :{port}' | awk '{{print $4}}'").split())


USERS_ACL = "/etc/redis/users.acl"  # Redis's users (password hashes)


def redis_answers(host, password: str) -> str:
    """What Redis answers an authenticated PING with `password` (PONG when it
    accepts it; the password in redis-cli's environment)."""
    result = host.run(f"REDISCLI_AUTH=%s redis-cli -h {address(host)} ping", password)
    return (result.stdout + result.stderr).strip()


CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def celery_inspect_command(host, what: str, timeout: int = 10) -> str:
    """The shell command of `celery inspect <what>` for host's own worker, as
    the airflow user with the deployed config."""
    name = host.check_output("hostname")
    return (
        f"runuser -u airflow -- env AIRFLOW_HOME=/var/lib/airflow AIRFLOW_CONFIG={CFG}"
        f" {CURRENT}/bin/celery --app {CELERY_APP} inspect {what} --timeout {timeout} --destination celery@{name}"
    )


def enablement(host, unit: str) -> str:
    """`systemctl is-enabled`: "enabled" only where the unit itself is enabled
    (testinfra's is_enabled takes every answer with exit code 0, such as the
    "enabled-runtime" of a PostgreSQL cluster that Debian's generator links
    under postgresql.service)."""
    return host.run(f"systemctl is-enabled {unit}").stdout.strip()


# --- metrics (role monitoring) ------------------------------------------------

PROMETHEUS_PORT = 9090
# every unit the monitoring role runs on a host in groups monitoring,
# postgresql and redis (the default scenario's single host)
METRICS_UNITS = ["prometheus", "collectd", "prometheus-node-exporter", "prometheus-postgres-exporter", "prometheus-redis-exporter"]


def prometheus_query(prometheus: str, promql: str) -> list[dict]:
    """The result of an instant query of Prometheus' HTTP API at `prometheus`."""
    resp = requests.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10)
    assert resp.status_code == 200, f"{promql}: {resp.status_code} {resp.text[:300]}"
    return resp.json()["data"]["result"]


def wait_for_series(prometheus: str, promql: str, timeout: float = 90) -> list[dict]:
    """Prometheus scrapes every 15 s and collectd flushes every 10 s: wait."""
    found: list[dict] = []

    def present() -> bool:
        found[:] = prometheus_query(prometheus, promql)
        return bool(found)

    wait_until(present, timeout, f"a series for {promql}")
    return found


def inventory_without(group: str, folder: Path) -> str:
    """A copy of the scenario's inventory in `folder` without `group` (its
    other files linked)."""
    copy = folder / "inventory"
    copy.mkdir()
    for entry in Path(INVENTORY).iterdir():
        if entry.name == "ansible_inventory.yml":
            tree = yaml.safe_load(entry.read_text())
            assert tree.pop(group, None), f"no group {group} in {entry}"
            (copy / entry.name).write_text(yaml.safe_dump(tree))
        else:
            (copy / entry.name).symlink_to(entry.resolve())
    return str(copy)


def main_pid(host, unit: str) -> int:
    """The unit's main process (0 when it has none)."""
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}"))


def metadata_sql(host, sql: str, port: int = 5432) -> str:
    """One SQL statement on the metadata database, as postgres (the host must run PostgreSQL, here on `port`)."""
    return host.check_output(f"runuser -u postgres -- psql -p {port} -d airflow -tAc {sql!r}")


def cfg(host) -> configparser.RawConfigParser:
    """The deployed airflow.cfg, parsed (values as written; `%%` stays doubled)."""
    parser = configparser.RawConfigParser()
    parser.read_string(host.file(CFG).content_string)
    return parser


def unit_active_since(host, unit: str) -> float:
    """When unit last entered `active` (CLOCK_MONOTONIC seconds); 0 if never."""
    return int(host.check_output(f"systemctl show -p ActiveEnterTimestampMonotonic --value {unit}") or 0) / 1e6


def host_units(name: str, groups: dict[str, list[str]]) -> list[str]:
    """The Airflow component units that the inventory puts on host `name`."""
    return [unit for group, unit in COMPONENT_UNITS.items() if name in groups.get(group, [])]


def switch_info(host) -> dict:
    """/opt/airflow/switch.json: what the last release switch on host did."""
    return json.loads(host.check_output(f"cat {AIRFLOW_INSTALL_ROOT}/switch.json"))


def release_of(host, link: str = "current") -> str:
    """The release id that /opt/airflow/<link> points at ("" when missing)."""
    return host.run(f"readlink -f {AIRFLOW_INSTALL_ROOT}/{link}").stdout.strip().rsplit("/", 1)[-1]


def api_version(base_url: str) -> str:
    resp = http_get(f"{base_url}/api/v2/version")
    assert resp.status_code == 200, f"{base_url}/api/v2/version answered {resp.status_code}"
    return resp.json()["version"]


def playbook_tail(result: subprocess.CompletedProcess, lines: int = 60) -> str:
    """The end of a playbook's output, for an assertion message."""
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def assert_refused_unchanged(result: subprocess.CompletedProcess, *names: str) -> None:
    """The run failed, its output names each of `names`, and no task changed
    anything before the error (every PLAY RECAP says changed=0)."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, "the run did not fail"
    # the YAML callback folds long messages: compare with whitespace runs as one space
    flat = " ".join(output.split())
    for name in names:
        assert " ".join(name.split()) in flat, f"the error does not name {name}:\n{output[-3000:]}"
    changed = [int(n) for n in re.findall(r"changed=(\d+)", output)]
    assert changed and max(changed) == 0, f"something changed before the error:\n{output[-3000:]}"


def assert_fetched_whole(host, path: str, fetched: Path) -> None:
    """`fetched` on the controller is the host's file at `path`, byte for byte
    (SHA-256), and the airflow role's fetch (roles/airflow/tasks/fetch.yml)
    left no scratch copy in the host's /var/tmp."""
    assert fetched.is_file(), f"{fetched} not fetched"
    digest = host.check_output(f"sha256sum {path}").split()[0]
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() == digest, f"{fetched} differs from {path}"
    left = host.run("ls -d /var/tmp/airflow-fetch.*")
    assert left.rc != 0, f"the fetch left its copy behind: {left.stdout}"


def task_results(result: subprocess.CompletedProcess) -> list[tuple[str, str, str]]:
    """(task, outcome, host) for each result line a run printed: outcome is
    'ok', 'changed', 'skipping', 'failed' or 'fatal' (one per host and loop item)."""
    found, task = [], None
    for line in result.stdout.splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK [") :].split("]", 1)[0]
        elif match := re.match(r"^(ok|changed|skipping|failed|fatal): \[([^\]]+)\]", line):
            found.append((task, match[1], match[2]))
    return found


def assert_no_secret_in_sudo_log(host, secrets: dict) -> None:
    """sudo logs the command line of each command it runs (the journal's
    COMMAND=), and Ansible puts a task's environment on that line: no secret
    of the vault may be there."""
    log = host.check_output("journalctl _COMM=sudo --output cat --no-pager")
    assert "COMMAND=" in log, "sudo logged no command: nothing was checked"
    leaked = sorted(name for name, value in secrets.items() if value and value in log)
    assert not leaked, f"sudo's log on {host.check_output('hostname')} holds {leaked}"


def run_status(extra_vars: dict, report: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """`make status` (playbooks/status.yml) with its JSON report: the run and
    {host: {lines, problems}}. It changes nothing but that report."""
    result = run_playbook("playbooks/status.yml", {**extra_vars, "status_report": str(report)})
    changed = [task.split(" -> ")[0] for task in changed_tasks(result)]
    assert changed == ["Write the report on this controller"], f"make status changed {changed}\n{playbook_tail(result)}"
    return result, json.loads(report.read_text())


def changed_tasks(result: subprocess.CompletedProcess) -> list[str]:
    """'TASK name -> host' for each result a run reported as changed."""
    return [f"{task} -> {host}" for task, outcome, host in task_results(result) if outcome == "changed"]


def task_outcomes(result: subprocess.CompletedProcess, task: str) -> list[str]:
    """What a run printed for each host (and loop item) of a task: 'ok', 'changed', 'skipping', ..."""
    return [outcome for name, outcome, _ in task_results(result) if name == task]


@contextlib.contextmanager
def command_lines(host, interval: float = 0.3):
    """Every command line of every process on the host while the block runs
    (ps polled in the background): what any user of the host could read."""
    seen: set[str] = set()
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            seen.update(host.run("ps -e -ww -o args=").stdout.splitlines())
            stop.wait(interval)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        yield seen
    finally:
        stop.set()
        poller.join()


def cli_json(host, command: str):
    """Run `airflow <command> -o json` through the deployed CLI wrapper
    (/usr/local/bin/airflow) and parse the JSON it prints (log lines skipped)."""
    out = host.run(f"/usr/local/bin/airflow {command} -o json")
    assert out.rc == 0, f"airflow {command}: rc {out.rc}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    lines = out.stdout.splitlines()
    for index, line in enumerate(lines):
        if line.lstrip().startswith(("[", "{")):
            try:
                return json.loads("\n".join(lines[index:]))
            except ValueError:
                continue
    raise AssertionError(f"no JSON in the output of airflow {command}: {out.stdout[-2000:]}")


def browser_dag_list(
    base_url: str,
    username: str,
    password: str,
    expect: tuple[str, ...] = (),
    screenshot: str | None = None,
    timeout: float = 90,
) -> list[str]:
    """Log in through the UI in a real headless browser (PyPI's playwright
    driving Debian's chromium), open /dags and return the DAG ids it shows,
    once every id in `expect` (or, without `expect`, any DAG) is there.
    Saves a screenshot (default: molecule's ephemeral directory, else /tmp)
    whether it worked or not."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    base_url = base_url.rstrip("/")
    if screenshot is None:
        where = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", tempfile.gettempdir()))
        screenshot = str(where / f"ui-dags-{re.sub(r'[^A-Za-z0-9]+', '_', base_url)}-{int(time.time())}.png")
    dag_links = """() => [...new Set(Array.from(document.querySelectorAll('a[href]'))
        .map(a => new URL(a.href, document.baseURI).pathname.match(/^\\/dags\\/([^\\/]+)\\/?$/))
        .filter(m => m).map(m => decodeURIComponent(m[1])))]"""
    ms = timeout * 1000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], timeout=ms)
        try:
            page = browser.new_context(ignore_https_errors=bool(tls_trust())).new_page()
            page.set_default_timeout(ms)
            try:
                page.goto(f"{base_url}/")
                page.wait_for_selector("input[name=username]")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", password)
                page.locator("form:has(input[name=password]) [type=submit]").first.click()
                page.wait_for_url(lambda url: "/login" not in url)
                try:
                    page.wait_for_load_state("networkidle", timeout=10000)
                except PlaywrightTimeout:
                    pass  # a UI that keeps polling: the loop below copes
                # the UI may still be redirecting after the login (3.0 goes
                # back to "/"): open /dags again until the list shows
                deadline = time.monotonic() + timeout
                while True:
                    page.goto(f"{base_url}/dags")
                    try:
                        page.wait_for_function(
                            f"(expect) => {{ const ids = ({dag_links})(); "
                            "return expect.length ? expect.every(id => ids.includes(id)) : ids.length > 0; }",
                            arg=list(expect),
                            timeout=max(1000, min(15000, (deadline - time.monotonic()) * 1000)),
                        )
                        return page.evaluate(dag_links)
                    except PlaywrightTimeout:
                        if time.monotonic() >= deadline:
                            raise
            except PlaywrightError as exc:
                try:
                    text = page.inner_text("body")[:1500]
                except PlaywrightError:
                    text = "(no page text)"
                raise AssertionError(
                    f"UI at {base_url}: no DAG list {list(expect)} after login ({exc.message.splitlines()[0]}); "
                    f"page {page.url}; screenshot {screenshot}; text: {text}"
                ) from None
            finally:
                page.screenshot(path=screenshot, full_page=True)
                print(f"UI screenshot: {screenshot}")
        finally:
            browser.close()
