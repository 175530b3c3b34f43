"""Helpers and fixtures shared by the molecule scenarios' testinfra suites.

Everything here talks to the real services: the Airflow REST API of the
deployed api-server (over the test network, from the controller), systemd,
PostgreSQL and Redis inside the test "VMs".
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tempfile
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


def vault() -> dict:
    """The decrypted secrets of the test bed (molecule/shared/group_vars/all/vault.yml)."""
    password = Path(os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE", SHARED / ".vault_pass")).read_bytes().strip()
    lib = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))])
    data = lib.decrypt((SHARED / "group_vars/all/vault.yml").read_bytes())
    return yaml.safe_load(data)


def run_playbook(playbook: str, extra_vars: dict, *options: str, inventory: str | None = None) -> subprocess.CompletedProcess:
    """ansible-playbook (a path relative to the repo) against the test VMs, as a user runs it."""
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_GATHERING="explicit",
        ANSIBLE_PIPELINING="true",
    )
    env.setdefault("ANSIBLE_VAULT_PASSWORD_FILE", str(SHARED / ".vault_pass"))
    return subprocess.run(
        ["ansible-playbook", "-i", inventory or INVENTORY, str(ROOT / playbook), "-e", json.dumps(extra_vars), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


def changed_count(result: subprocess.CompletedProcess) -> int:
    """Sum of changed=N over the PLAY RECAP of a run."""
    return sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))


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

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 15):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        # per request: a session's verify loses to REQUESTS_CA_BUNDLE
        self.verify = tls_trust() or True
        self.password = password
        self.token = self.issue_token(username, password)
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
def api_hosts(groups) -> list:
    return [host_of(name) for name in groups["airflow_api_server"]]


@pytest.fixture(scope="session")
def api(api_hosts, secrets) -> AirflowAPI:
    """Client of the first api-server, logged in as the admin from the vault."""
    return AirflowAPI(api_url(api_hosts[0]), "admin", secrets["vault_airflow_admin_password"])
