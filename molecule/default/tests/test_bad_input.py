"""Bad input gets a clear error that names the variable, and nothing changes.

Each case gives playbooks/site.yml one bad input against the deployed test
VM and asserts that the run fails, that the message names the variable, and
that no task changed anything (recap changed=0, airflow.cfg untouched).
Cases that the same check catches run together (one run each group, four
runs side by side): preflight reports every failed check of a role at
once, so each of them must be named in that one run.
"""

from __future__ import annotations

import shlex
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

from airflow_testlib import CFG, INVENTORY, assert_refused_unchanged, assert_unchanged, run_playbook, vault

ROOT = Path(__file__).resolve().parents[3]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_api_server")

CASES = {
    "missing vault secret": ({"vault_airflow_jwt_secret": ""}, "airflow_jwt_secret: must be at least 32 characters"),
    "malformed fernet key": ({"airflow_fernet_key": "not-a-fernet-key"}, "airflow_fernet_key: must be a Fernet key"),
    "short admin password": ({"airflow_admin_password": "short"}, "airflow_admin_password"),
    "short redis password": ({"redis_password": "tooshort"}, "redis_password"),
    "short postgres password": ({"postgresql_airflow_password": "tooshort"}, "postgresql_airflow_password"),
    "database password not URL-safe": ({"airflow_database_password": "with spaces and % signs!!"}, "airflow_database_password"),
    # e.g. a vault value made with `echo ... | ansible-vault encrypt_string`: check_input refuses
    # a line break in any variable a check names or the role's argument_specs lists
    "database password ending in a newline": (
        {"airflow_database_password": "a1b2c3d4e5f6g7h8i9\n"},
        "airflow_database_password: must be on one line",
    ),
    "admin name on two lines (no check of its own)": ({"airflow_admin_firstname": "Ada\nLovelace"}, "airflow_admin_firstname: must be on one line"),
    "short api secret key": ({"airflow_api_secret_key": "abc"}, "airflow_api_secret_key"),
    "unknown executor": (
        {"airflow_config": {"core": {"executor": "TurboExecutor"}}},
        "airflow_config.core.executor: this deployment runs Celery workers",
    ),
    "plain-text secret in airflow_config": (
        {"airflow_config": {"core": {"fernet_key": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="}}},
        "airflow_config: would put secrets in plain text into the inventory: core.fernet_key (set airflow_fernet_key, from the vault, instead)",
    ),
    "airflow_config setting what a variable sets": (
        {"airflow_config": {"scheduler": {"scheduler_health_check_server_port": 8975}}},
        "airflow_config: sets what the role sets itself or relies on: "
        "scheduler.scheduler_health_check_server_port (set airflow_scheduler_health_port instead).",
    ),
    "airflow_config option in upper case": (
        {"airflow_config": {"core": {"DAGS_FOLDER": "/srv/dags"}}},
        "airflow_config: section and option names are lower case in airflow.cfg: core.DAGS_FOLDER.",
    ),
    "airflow_config not section -> options": (
        {"airflow_config": {"core": "executor=CeleryExecutor"}},
        "airflow_config: must be a dict of section",
    ),
    "version without a lock": ({"airflow_version": "3.9.9"}, "airflow_version"),
    "api port out of range": ({"airflow_api_port": 70000}, "airflow_api_port"),
    "worker concurrency 0": ({"airflow_worker_concurrency": 0}, "airflow_worker_concurrency"),
    "no worker queue": ({"airflow_worker_queues": []}, "airflow_worker_queues"),
    "dags folder missing on the controller": ({"airflow_dags_src": "/nonexistent/dags/"}, "airflow_dags_src"),
    "flower on the network without a login": ({"airflow_flower_host": "0.0.0.0"}, "airflow_flower_basic_auth"),
    "api-server bound to an address the host lacks": (
        {"airflow_api_host": "203.0.113.77"},
        "airflow_api_host=203.0.113.77: not an address of this host",
    ),
    "redis port out of range": ({"redis_port": 0}, "redis_port"),
    "redis memory cap Redis cannot read": ({"redis_maxmemory": "256 MB"}, "redis_maxmemory: must be bytes or a number"),
    "redis bound to an address the host lacks": (
        {"redis_bind_addresses": ["127.0.0.1", "203.0.113.78"]},
        "redis_bind_addresses: 203.0.113.78: not an address of this host",
    ),
    "postgresql listening on an address the host lacks": (
        {"postgresql_listen_addresses": ["localhost", "203.0.113.79"]},
        "postgresql_listen_addresses: 203.0.113.79: not an address of this host",
    ),
    "retention Prometheus cannot read": (
        {"monitoring_prometheus_retention": "2d1w"},  # units out of order: Prometheus refuses it
        "monitoring_prometheus_retention: must be a Prometheus duration",
    ),
    "retention past Prometheus's range": (
        {"monitoring_prometheus_retention": "293y"},  # over 2^63 ns: Prometheus refuses it at its start
        "monitoring_prometheus_retention: must be a Prometheus duration up to 292 years",
    ),
    "scrape interval Prometheus cannot read": (
        {"monitoring_scrape_interval": "1m 30s"},  # promtool would refuse prometheus.yml on the host
        "monitoring_scrape_interval: must be a Prometheus duration above 0",
    ),
    "metrics on an address the host lacks": (
        {"monitoring_node_address": "203.0.113.80"},
        "monitoring_node_address: 203.0.113.80: not an address of this host",
    ),
    "two monitoring services on one port": ({"monitoring_redis_exporter_port": 9100}, "monitoring_*_port"),
    "alert rule name with a space": (
        {"monitoring_alert_rules": [{"alert": "Scheduler down", "expr": "up == 0", "summary": "down"}]},
        "monitoring_alert_rules",
    ),
    "not a boolean": ({"airflow_load_examples": "maybe"}, "airflow_load_examples"),
    "TLS key without its certificate": (
        {"airflow_api_tls": True, "airflow_api_tls_private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"},
        "airflow_api_tls_private_key",
    ),
    "TLS certificate that is not PEM": (
        {"airflow_api_tls": True, "airflow_api_tls_certificate": "my-cert.crt", "airflow_api_tls_private_key": "my-key.key"},
        "airflow_api_tls_certificate",
    ),
    "release builder not an airflow host": ({"airflow_release_builder": "no-such-host"}, "airflow_release_builder"),
    "no release kept": ({"airflow_releases_keep": 0}, "airflow_releases_keep"),
    "negative installer cache cap": ({"airflow_installer_cache_max_mb": -1}, "airflow_installer_cache_max_mb"),
    "unknown installer": ({"airflow_installer": "conda"}, "airflow_installer"),
    "index URL that is no URL": ({"airflow_pip_index_url": "mirror.example/simple"}, "airflow_pip_index_url: must be empty (PyPI)"),
    "empty admin username": ({"airflow_admin_username": ""}, "airflow_admin_username"),
    "queue name with a comma": ({"airflow_worker_queues": ["a,b"]}, "airflow_worker_queues"),
    "backup schedule systemd cannot read": ({"postgresql_backup_schedule": "every other tuesday"}, "postgresql_backup_schedule"),
    "no dump kept": ({"postgresql_backup_keep": 0}, "postgresql_backup_keep"),
    "negative disk reserve": ({"postgresql_backup_min_free_mb": -1}, "postgresql_backup_min_free_mb: must be 0 or more"),
    "no worker on the default queue": (
        {"airflow_worker_queues": ["etl"]},
        "airflow_worker_queues: no worker host consumes the default queue default (they serve etl)",
    ),
    "server setting name PostgreSQL cannot have": (
        {"postgresql_settings": {"max_connections": 200, "shared buffers": "256MB"}},
        "postgresql_settings: must map PostgreSQL setting names to values that PostgreSQL accepts (postgresql.conf(5)): "
        "names of letters, digits, _ and . only: shared buffers",
    ),
    "server setting PostgreSQL refuses": (
        {"postgresql_settings": {"max_connections": 200, "shared_buffers": "4 GiB"}},
        'postgresql_settings: must map PostgreSQL setting names to values that PostgreSQL accepts (postgresql.conf(5)): '
        'PostgreSQL says invalid value for parameter "shared_buffers": "4 GiB"',
    ),
    "server setting the role sets itself": (
        {"postgresql_settings": {"max_connections": 200, "Port": 5433}},
        "postgresql_settings: sets what the role sets itself: port (set postgresql_listen_addresses or postgresql_port instead",
    ),
    "components may open more connections than PostgreSQL accepts": (
        {"postgresql_settings": {"max_connections": 40}},
        "postgresql_settings.max_connections",
    ),
    "upkeep schedule systemd cannot read": ({"airflow_maintenance_schedule": "now and then"}, "airflow_maintenance_schedule"),
    "api port that needs root": ({"airflow_api_port": 443}, "airflow_api_port: must be a port number, 1024-65535"),
    "certificate name without its type": (
        {"airflow_api_tls_subject_alt_names": ["airflow.example.com"]},
        "airflow_api_tls_subject_alt_names: each name needs its type",
    ),
    "api-server on the node exporter's port": (
        {"airflow_api_port": 9100},
        "tcp/9100 is taken by airflow_api_port and monitoring_node_exporter_port: give each service of a host its own port",
    ),
    "flower password with a comma": ({"airflow_flower_basic_auth": "ops:pass,word"}, "airflow_flower_basic_auth: must be user:password"),
    # a typo would otherwise deploy and change nothing
    "misspelt variable": (
        {"airflow_worker_concurency": 8},
        "airflow_worker_concurency: the airflow role has no such variable, so it would change nothing"
        " (did you mean airflow_worker_concurrency?)",
    ),
    "misspelt database variable": (
        {"postgresql_backup_kep": 3},
        "postgresql_backup_kep: the postgresql role has no such variable, so it would change nothing"
        " (did you mean postgresql_backup_keep?)",
    ),
}

# Cases that one run takes together: each group is caught by one check (a
# role's check_input, or one argument_specs validation), which reports all
# of its failures; no two cases of a group set the same variable, and each
# case expects a text that only its own failure prints (its check's
# "variable: message" where another case's message names the variable
# too). Every other case runs alone.
GROUPS = [
    [
        "missing vault secret", "malformed fernet key", "short admin password", "database password not URL-safe",
        "short api secret key", "api port out of range", "worker concurrency 0", "no worker queue",
        "dags folder missing on the controller", "flower on the network without a login",
        "release builder not an airflow host", "no release kept", "negative installer cache cap",
        "empty admin username", "upkeep schedule systemd cannot read", "plain-text secret in airflow_config",
        "index URL that is no URL", "api-server bound to an address the host lacks", "misspelt variable",
    ],
    [
        "unknown executor", "version without a lock", "queue name with a comma", "TLS certificate that is not PEM",
        "api port that needs root", "certificate name without its type", "flower password with a comma",
        "database password ending in a newline", "admin name on two lines (no check of its own)",
    ],
    ["airflow_config not section -> options", "TLS key without its certificate"],
    ["not a boolean", "unknown installer"],
    [
        "short redis password", "redis port out of range", "redis bound to an address the host lacks",
        "redis memory cap Redis cannot read",
    ],
    [
        "short postgres password", "backup schedule systemd cannot read", "no dump kept", "negative disk reserve",
        "postgresql listening on an address the host lacks", "server setting PostgreSQL refuses", "misspelt database variable",
    ],
    [
        "two monitoring services on one port", "alert rule name with a space", "metrics on an address the host lacks",
        "retention Prometheus cannot read", "scrape interval Prometheus cannot read",
    ],
]
RUNS = GROUPS + [[case] for case in CASES if not any(case in group for group in GROUPS)]


def merged_input(group: list[str]) -> dict:
    extra: dict = {}
    for case in group:
        overlap = set(extra) & set(CASES[case][0])
        assert not overlap, f"{case!r} sets {overlap} that another case of its group sets too"
        extra.update(CASES[case][0])
    return extra


def run_site(extra_vars: dict, inventory: str = INVENTORY, *options: str) -> subprocess.CompletedProcess:
    return run_playbook("playbooks/site.yml", extra_vars, *options, inventory=inventory)


def assert_no_secret(output: str) -> None:
    for name, value in vault().items():
        assert value not in output, f"{name} appears in the output"


def assert_refused(result: subprocess.CompletedProcess, variable: str) -> None:
    assert_no_secret(result.stdout + result.stderr)
    assert_refused_unchanged(result, variable)


@pytest.fixture(scope="module")
def refusals(host) -> dict[str, subprocess.CompletedProcess]:
    """Each case's site.yml run (its group's), four runs at a time (each
    stops in preflight, before any change, so they cannot disturb one
    another); airflow.cfg must be the same file afterwards."""
    before = host.file(CFG).mtime, host.check_output(f"sha1sum {CFG}")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda group: run_site(merged_input(group)), RUNS))
    assert (host.file(CFG).mtime, host.check_output(f"sha1sum {CFG}")) == before, "airflow.cfg changed"
    return {case: result for group, result in zip(RUNS, results) for case in group}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_before_any_change(refusals, case):
    assert_refused(refusals[case], CASES[case][1])


def test_workers_without_api_server_scheduler_dag_processor_are_refused(host, tmp_path):
    """An inventory with a worker and no api-server, scheduler or
    dag-processor: refused, naming the groups."""
    name = host.check_output("hostname")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        textwrap.dedent(
            f"""
            all:
              vars: {{ansible_connection: community.docker.docker}}
              children:
                postgresql: {{hosts: {{{name}: {{}}}}}}
                redis: {{hosts: {{{name}: {{}}}}}}
                airflow:
                  children:
                    airflow_api_server: {{hosts: {{}}}}
                    airflow_worker: {{hosts: {{{name}: {{}}}}}}
            """
        )
    )
    (tmp_path / "group_vars").symlink_to(ROOT / "molecule/shared/group_vars")
    result = run_site({}, str(inventory))
    # the checks' own words (a template error of a default names the group too)
    assert_refused(result, "airflow_api_server: the inventory group airflow_api_server has no host")
    assert_refused(result, "airflow_scheduler / airflow_dag_processor: the inventory groups airflow_scheduler and")


BULLSEYE = {
    "/etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nNAME="Debian GNU/Linux"\nVERSION_ID="11"\n'
    'VERSION="11 (bullseye)"\nVERSION_CODENAME=bullseye\nID=debian\n',
    "/etc/debian_version": "11.11\n",
}


def test_an_unsupported_platform_is_refused(host):
    """The host says it is Debian 11 (its release files, for one run): preflight
    refuses it, naming the platform and the supported ones (the roles'
    meta/main.yml), before any change."""
    for path, text in BULLSEYE.items():
        host.run_expect([0], f"mv -T {path} {path}.test-keep && printf %s {shlex.quote(text)} > {path}")
    try:
        result = run_site({})
    finally:
        for path in BULLSEYE:
            host.run_expect([0], f"mv -T {path}.test-keep {path}")
    assert_refused(result, "platform")
    said = " ".join((result.stdout + result.stderr).split())  # the YAML callback folds long messages
    for words in ("unsupported platform: Debian 11", "(bullseye); supported: Debian bookworm, trixie."):
        assert words in said, f"the refusal does not say {words!r}:\n{said[-3000:]}"


def test_verbose_converge_leaks_no_secret():
    """A whole converge at -vv prints no vault value (no_log where it matters)."""
    result = run_site({}, INVENTORY, "-vv")
    assert_unchanged(result)
    assert_no_secret(result.stdout + result.stderr)
