"""Cluster: components spread over hosts, checked against the real services."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import requests
import yaml

from airflow_testlib import (
    CFG,
    COMPONENT_UNITS,
    LOWEST_BIN,
    LOWEST_COLLECTIONS,
    RESTART_PENDING,
    TLS_TRUST,
    AirflowAPI,
    address,
    admin_api,
    api_url,
    assert_fetched_whole,
    assert_no_secret_in_sudo_log,
    assert_no_import_errors,
    assert_ok,
    assert_refused_unchanged,
    deployed_lock,
    host_of,
    http_get,
    listeners,
    lowest_ansible_core,
    run_playbook,
    run_status,
    tls_trust,
    unit_active_since,
    vault,
    wait_task_running,
)


def test_the_scenario_ran_on_the_lowest_ansible_core():
    """molecule.yml puts .venv-lowest first on PATH with only the declared and
    test-bed collections; the verifier gets the environment that create,
    converge and idempotence had, so this is what they ran on."""
    ansible_playbook = shutil.which("ansible-playbook")
    assert ansible_playbook == str(LOWEST_BIN / "ansible-playbook"), f"molecule ran {ansible_playbook}: run `make lint` first"
    lowest_ansible_core(ansible_playbook)
    assert os.environ.get("ANSIBLE_COLLECTIONS_PATH") == LOWEST_COLLECTIONS
    assert os.environ.get("ANSIBLE_COLLECTIONS_SCAN_SYS_PATH") == "false"


def test_every_host_was_managed_as_a_login_user_through_sudo(hosts, groups):
    """As production reaches its VMs (group via_sudo): converge and re-run
    logged in as the login user and ran Ansible's modules through sudo,
    which records each in the journal (the outsider gets no role)."""
    user = yaml.safe_load((Path(__file__).resolve().parents[2] / "shared/vars/vm.yml").read_text())["vm_login_user"]
    for name in sorted({n for hs in groups.values() for n in hs}):
        host = hosts[name]
        count = host.check_output(
            f"journalctl _COMM=sudo --output cat --no-pager | grep -c '^ *{user} : .*COMMAND=.*BECOME-SUCCESS-' || true")
        assert int(count) >= 20, f"{name}: {count} module runs of {user} through sudo in the journal"


def test_no_secret_in_the_sudo_log(hosts, secrets):
    """What the login user ran through sudo on each host (the health gates
    with their passwords included) holds no secret of the vault."""
    for host in hosts.values():
        assert_no_secret_in_sudo_log(host, secrets)


def test_the_index_credentials_reach_root_alone(hosts, groups):
    """core1 builds from an index URL with credentials (host_vars/core1.yml):
    sudo's log on no host holds them (checked first: the reads below go
    through sudo, with nothing of the token on their command lines); the
    installers' configuration files that carried them to the build, root's
    alone, went when it ended: no host keeps them at rest."""
    token = hosts["core1"].ansible.get_variables()["molecule_index_token"]
    for host in hosts.values():
        assert_no_secret_in_sudo_log(host, {"the index token": token})
    # core1 built (its uv cache), in this run: the release cache is molecule's own
    assert hosts["core1"].run("find /var/cache/airflow-uv -mindepth 1 -print -quit").stdout.strip()
    for name in groups["airflow"]:
        host = hosts[name]
        for config in ("installer-uv.toml", "installer-pip.conf"):
            assert not host.file(f"/etc/airflow/{config}").exists, f"{name} keeps /etc/airflow/{config}"
        # the URL's user name, not the token, on grep's command line (sudo logs it)
        found = host.run("grep -rlF -e ://molecule: /etc/airflow")
        assert found.rc == 1 and not found.stdout, f"{name}: {found.stdout}{found.stderr}"


def test_components_run_where_the_inventory_says(groups, hosts):
    for group, unit in COMPONENT_UNITS.items():
        for name, host in {**hosts, "outsider": host_of("outsider")}.items():
            service = host.service(unit)
            if name in groups[group]:
                assert service.is_running and service.is_enabled, f"{unit} not running on {name}"
            else:
                assert not service.is_running, f"{unit} runs on {name}, which is not in {group}"


def test_every_host_sees_a_migrated_schema(hosts, groups):
    """The one migration (run_once) serves all hosts: none sees pending migrations."""
    for name in groups["airflow"]:
        assert hosts[name].run("airflow db check-migrations --migration-wait-timeout 0").rc == 0


def test_shared_secrets_identical(hosts, groups, secrets):
    for name in groups["airflow"]:
        cfg = hosts[name].file("/etc/airflow/airflow.cfg").content_string
        for key in ("vault_airflow_jwt_secret", "vault_airflow_api_secret_key", "vault_airflow_fernet_key"):
            assert secrets[key] in cfg, f"{key} differs on {name}"


def test_execution_api_points_at_an_api_server(hosts, groups):
    url = f"{api_url(hosts[groups['airflow_api_server'][0]])}/execution/"
    for name in groups["airflow_worker"]:
        value = hosts[name].check_output("airflow config get-value core execution_api_server_url 2>/dev/null | tail -1")
        assert value == url


def test_token_from_one_api_server_works_on_the_other(api_hosts, secrets):
    first = admin_api(api_hosts[0])
    other = api_url(api_hosts[1])
    resp = http_get(f"{other}/api/v2/dags", headers={"Authorization": f"Bearer {first.token}"})
    assert resp.status_code == 200, resp.text
    assert http_get(f"{other}/api/v2/dags").status_code == 401


def test_api_servers_speak_https_that_every_airflow_host_trusts(api_hosts, hosts, groups):
    """airflow_api_tls with self-signed pairs: each api-server serves HTTPS with
    its own certificate; every Airflow host holds all of them as its trust."""
    trust = tls_trust()
    assert trust, f"{TLS_TRUST} missing: this scenario deploys with airflow_api_tls"
    for host in api_hosts:
        url = api_url(host)
        assert url.startswith("https://")
        assert http_get(f"{url}/api/v2/version").status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{url}/api/v2/version", timeout=10)  # not signed by a public CA
        try:
            plain = requests.get(f"{url.replace('https://', 'http://')}/api/v2/version", timeout=10).status_code
        except requests.ConnectionError:
            plain = None
        assert plain != 200, "the api-server answered plain HTTP"
        key = host.file("/etc/airflow/tls/api-server.key")
        assert (key.user, key.group, key.mode) == ("root", "airflow", 0o640)
    # what the workers' task SDK does: verify each api-server with the trust
    for name in groups["airflow"]:
        assert hosts[name].file(TLS_TRUST).content_string.count("BEGIN CERTIFICATE") == len(api_hosts)
        for host in api_hosts:
            hosts[name].check_output(f"curl --fail --silent --cacert {TLS_TRUST} {api_url(host)}/api/v2/version")
    for host in api_hosts:
        value = host.check_output("airflow config get-value api ssl_cert 2>/dev/null | tail -1")
        assert value == TLS_TRUST


def test_every_host_runs_the_one_shipped_release(hosts, groups):
    """The release is built once and shipped: every Airflow host's current
    release has the same name, is whole (.complete), holds the committed lock
    and runs Airflow 3.3.2. The workers' index URL points nowhere, so they got
    it without any index: no uv (cache) of their own."""
    version = os.environ["EXPECTED_AIRFLOW_VERSION"]
    releases = {}
    for name in groups["airflow"]:
        host = hosts[name]
        release = host.check_output("readlink /opt/airflow/current")
        assert release.startswith("releases/"), f"{name}: current -> {release}"
        releases[name] = release
        assert host.file(f"/opt/airflow/{release}/.complete").exists, f"{name}: {release} not marked complete"
        assert host.check_output("/opt/airflow/current/bin/airflow version 2>/dev/null | tail -1") == version
    assert len(set(releases.values())) == 1, f"hosts run different releases: {releases}"
    release = next(iter(releases.values()))
    minor = re.fullmatch(rf"releases/{re.escape(version)}-py(\d+\.\d+)-[0-9a-f]{{12}}", release)
    assert minor, f"release name {release} is not <version>-py<X.Y>-<12 hex of the lock's SHA-1>"
    lock = deployed_lock(version, minor.group(1))
    digest = hashlib.sha1(lock.read_bytes()).hexdigest()
    assert release.endswith(digest[:12]), f"{release} is not named after {lock.name} ({digest[:12]})"
    for name in groups["airflow"]:
        on_host = hosts[name].check_output("sha1sum < /opt/airflow/current/requirements.lock | cut -c1-40")
        assert on_host == digest, f"{name}: requirements.lock differs from {lock.name}"
    for name in groups["airflow_worker"]:
        host = hosts[name]
        index = host.ansible.get_variables().get("airflow_pip_index_url")
        assert index, f"{name}: the scenario gives the workers an index they cannot reach (host_vars)"
        assert host.run(f"curl --silent --max-time 5 {index}/").rc != 0, f"{name} reaches its index {index}"
        assert not host.file("/var/cache/airflow-uv").exists, f"{name} has a uv cache: it installed packages itself"
        assert not host.file("/opt/airflow/uv").exists, f"{name} has its own uv: it built a release itself"


def test_queues_route_tasks_to_the_right_workers(api, groups):
    run, tis = api.run_dag("smoke_queues")
    assert run["state"] == "success", [(ti["task_id"], ti["state"]) for ti in tis]
    extra = [ti for ti in tis if ti["task_id"] == "on_extra"]
    default = [ti for ti in tis if ti["task_id"] == "on_default"]
    assert [ti["hostname"] for ti in extra] == ["worker2"], extra
    assert all(ti["queue"] == "extra" for ti in extra)
    assert all(ti["queue"] == "default" for ti in default)
    assert {ti["hostname"] for ti in default} == set(groups["airflow_worker"]), "both workers should run default tasks"


def test_dags_and_plugins_import(api):
    assert_no_import_errors(api)


def test_smoke_dag_with_plugin_on_workers(api, groups):
    run, tis = api.run_dag("smoke_celery")
    assert run["state"] == "success"
    assert {ti["hostname"] for ti in tis} <= set(groups["airflow_worker"])
    where = api.xcom("smoke_celery", run["dag_run_id"], "where")
    assert where["signature"] == f"smoke-plugin-v1@{where['hostname']}"


def _stopped(host, unit, ready_url):
    """Context: stop a unit; afterwards start it and wait until ready_url answers 200."""

    class Stopped:
        def __enter__(self):
            host.check_output(f"systemctl stop {unit}")
            return self

        def __exit__(self, *exc):
            host.check_output(f"systemctl start {unit}")
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if http_get(ready_url, timeout=5).status_code == 200:
                        return
                except requests.ConnectionError:
                    pass
                time.sleep(2)
            raise AssertionError(f"{unit} not ready again at {ready_url}")

    return Stopped()


def _scheduler_stopped(host):
    return _stopped(host, "airflow-scheduler", f"http://{address(host)}:8974/health")


def _api_server_stopped(host):
    return _stopped(host, "airflow-api-server", f"{api_url(host)}/api/v2/version")


def test_run_completes_with_one_scheduler_stopped(api, hosts, groups):
    with _scheduler_stopped(hosts[groups["airflow_scheduler"][1]]):
        run, tis = api.run_dag("smoke_celery")
        assert run["state"] == "success", [(ti["task_id"], ti["state"]) for ti in tis]
    with _scheduler_stopped(hosts[groups["airflow_scheduler"][0]]):
        run, _ = api.run_dag("smoke_celery")
        assert run["state"] == "success"


def test_an_api_server_bound_to_its_node_address_is_probed_there(hosts):
    """core2's api-server binds its node address alone (host_vars/core2.yml),
    so nothing answers on its loopback: its health gates (the converge) and
    `make status` (the next test) asked it at that address."""
    core2 = hosts["core2"]
    assert listeners(core2, 8080) == [f"{address(core2)}:8080"]
    assert core2.run("curl -sk --max-time 5 -o /dev/null https://127.0.0.1:8080/api/v2/version").rc != 0
    assert core2.run(f"curl -sk --max-time 5 -o /dev/null https://{address(core2)}:8080/api/v2/version").rc == 0


def test_make_status_passes_and_names_a_stopped_scheduler(hosts, groups, tmp_path):
    """`make status` (playbooks/status.yml) shows every host healthy and
    changes nothing; with one scheduler stopped and a worker's restart left
    pending it fails on those two hosts alone, naming the unit, its probe and
    the pending restart (the other scheduler keeps Airflow's own view
    healthy)."""
    result, report = run_status(CONVERGE_VARS, tmp_path / "status.json")
    assert_ok(result, "make status")
    assert set(report) == set(hosts), report
    assert {name: status["problems"] for name, status in report.items() if status["problems"]} == {}, report
    for group, kind in (("airflow_scheduler", "scheduler"), ("airflow_worker", "worker"), ("airflow_api_server", "api_server")):
        for name in groups[group]:
            assert [line for line in report[name]["lines"] if line.startswith(f"{kind}: healthy after")], report[name]
    assert [line for line in report[groups["redis"][0]]["lines"] if re.fullmatch(r"Redis on \S+: PONG", line)], report
    down, worker = groups["airflow_scheduler"][1], groups["airflow_worker"][0]
    # a restart that a run recorded and did not do (it ended early)
    hosts[worker].check_output(f"touch {RESTART_PENDING}/worker")
    try:
        with _scheduler_stopped(hosts[down]):
            failed, report = run_status(CONVERGE_VARS, tmp_path / "down.json")
    finally:
        hosts[worker].check_output(f"rm -f {RESTART_PENDING}/worker")
    assert failed.returncode != 0, failed.stdout[-4000:]
    assert {name: status["problems"] for name, status in report.items() if status["problems"]} == {
        down: ["airflow-scheduler is not active", "scheduler: not healthy (airflow-scheduler not active)"],
        worker: ["pending restart: worker"]}, report


def test_rest_api_survives_one_api_server_stopped(api_hosts, secrets):
    """Either api-server alone authenticates and serves the REST API."""
    for down, up in ((api_hosts[0], api_hosts[1]), (api_hosts[1], api_hosts[0])):
        with _api_server_stopped(down):
            client = admin_api(up)
            dags = client.get("/api/v2/dags").json()["dags"]
            assert {"smoke_celery", "smoke_queues"} <= {d["dag_id"] for d in dags}


def test_run_completes_with_the_second_api_server_stopped(api, api_hosts):
    """Workers use the first api-server's execution API (or airflow_api_url, a load balancer)."""
    with _api_server_stopped(api_hosts[1]):
        run, _ = api.run_dag("smoke_celery")
        assert run["state"] == "success"


def test_worker_cannot_use_redis_without_password(hosts, groups, secrets):
    data = address(hosts[groups["redis"][0]])
    worker = hosts[groups["airflow_worker"][0]]
    out = worker.run(f"{_python} -c %s", _redis_probe(data, None))
    assert "NOAUTH" in out.stdout or "Authentication required" in out.stdout, out.stdout + out.stderr
    out = worker.run(f"{_python} -c %s", _redis_probe(data, secrets["vault_redis_password"]))
    assert "PONG" in out.stdout, out.stdout + out.stderr


def test_worker_cannot_reach_postgres_as_superuser(hosts, groups, secrets):
    data = address(hosts[groups["postgresql"][0]])
    worker = hosts[groups["airflow_worker"][0]]
    probe = (
        "import psycopg2, sys\n"
        "try:\n"
        f"    psycopg2.connect(host='{data}', user=sys.argv[1], password=sys.argv[2], dbname=sys.argv[3], connect_timeout=5)\n"
        "    print('CONNECTED')\n"
        "except psycopg2.OperationalError as e:\n"
        "    print('REFUSED', e)\n"
    )
    superuser = worker.run(f"{_python} -c %s postgres whatever postgres", probe)
    assert "REFUSED" in superuser.stdout and "no pg_hba.conf entry" in superuser.stdout, superuser.stdout
    airflow = worker.run(f"{_python} -c %s airflow %s airflow", probe, secrets["vault_postgresql_airflow_password"])
    assert "CONNECTED" in airflow.stdout, airflow.stdout


def test_outsider_is_refused_by_postgres(hosts, groups, secrets):
    data = address(hosts[groups["postgresql"][0]])
    out = host_of("outsider").run(
        f"PGPASSWORD=%s psql -h {data} -U airflow -d airflow -c 'select 1'", secrets["vault_postgresql_airflow_password"]
    )
    assert out.rc != 0 and "no pg_hba.conf entry" in out.stderr, out.stderr


def test_outsider_needs_the_redis_password(hosts, groups):
    data = address(hosts[groups["redis"][0]])
    out = host_of("outsider").run(f"redis-cli -h {data} ping")
    assert "NOAUTH" in out.stdout + out.stderr


def _converge_vars() -> dict:
    """The JSON extra vars molecule.yml's converge passes besides the inventory
    (HTTPS api-servers, the broker's keys under a prefix, this run's release
    cache), with molecule's variables in them expanded: the playbooks these
    tests run get the same."""
    args = yaml.safe_load((Path(__file__).resolve().parents[1] / "molecule.yml").read_text())
    extra = {}
    for arg in args["ansible"]["executor"]["args"]["ansible_playbook"]:
        if arg.startswith("{"):
            extra.update(json.loads(os.path.expandvars(arg)))
    assert "$" not in json.dumps(extra), f"molecule's variables are not all set here: {extra}"
    return extra


CONVERGE_VARS = _converge_vars()


def test_celery_uses_the_key_prefix_of_airflow_config(hosts, groups, secrets):
    """converge sets [celery_broker_transport_options] global_keyprefix: every
    Celery key in the broker carries it, so the health gate, which started
    each worker, reached them with Airflow's own Celery app (a bare app
    without the prefix gets no answer)."""
    data = hosts[groups["redis"][0]]
    keys = data.check_output(
        "REDISCLI_AUTH=%s redis-cli -h %s --scan", secrets["vault_redis_password"], address(data)
    ).split()
    prefix = CONVERGE_VARS["airflow_config"]["celery_broker_transport_options"]["global_keyprefix"]
    # Airflow uses this Redis as its Celery broker only: every key is Celery's
    assert any("kombu" in key for key in keys), f"no Celery (kombu) keys in the broker: {keys}"
    assert all(key.startswith(prefix) for key in keys), (prefix, keys)


# The workers' current release has psycopg2 and redis: probe from there, as Airflow does.
_python = "/opt/airflow/current/bin/python"


def _redis_probe(address_: str, password: str | None) -> str:
    return (
        "import redis\n"
        "try:\n"
        f"    print(redis.Redis(host='{address_}', password={password!r}, socket_timeout=5).ping() and 'PONG')\n"
        "except redis.exceptions.AuthenticationError as e:\n"
        "    print('NOAUTH', e)\n"
        "except redis.exceptions.ResponseError as e:\n"
        "    print(e)\n"
    )


def test_backup_fetch_from_the_data_host_is_streamed(hosts, groups, tmp_path):
    """`make backup FETCH=yes` through sudo from the database host, which runs
    no Airflow component: the dump arrives whole by the airflow role's fetch
    (the test bed's slurp fails a fetch that would read it into memory), and
    no copy of it stays in the host's /var/tmp."""
    data = groups["postgresql"][0]
    assert data not in groups["airflow"], f"{data} is an Airflow host too"
    result = run_playbook("playbooks/backup.yml", {**CONVERGE_VARS, "backup_fetch": "yes", "backup_fetch_dir": str(tmp_path)})
    assert_ok(result)
    dump = re.search(rf"{data}:(/\S+/airflow-\d{{8}}T\d{{6}}Z\.dump)", result.stdout).group(1)
    assert_fetched_whole(hosts[data], dump, tmp_path / Path(dump).name)


def test_an_api_port_change_drains_the_workers_before_the_api_servers_move(api, api_hosts, hosts, groups):
    """airflow_api_port changes while a task runs on a worker: the execution
    API URL the workers use moves with it, so every worker drains (its task
    finishes against the old URL, which still answers) before any
    api-server restarts, and starts after the last one (the new URL
    answers). The task succeeds on its first try; then back to 8080 the
    same way, and a run succeeds there."""
    run_id = api.trigger("smoke_celery", {"linger": 30})
    wait_task_running(api, "smoke_celery", run_id, "where")
    url_host = api_hosts[0]  # the URL the workers use names the first api-server (airflow_api_url unset)
    moved_url = api_url(url_host).replace(":8080", ":8081")
    try:
        moved = run_playbook("playbooks/site.yml", {**CONVERGE_VARS, "airflow_api_port": 8081})
        assert_ok(moved, "site.yml with airflow_api_port 8081")
        client = AirflowAPI(moved_url, "admin", vault()["vault_airflow_admin_password"])
        run, tis = client.wait_run("smoke_celery", run_id)
        where = next(t for t in tis if t["task_id"] == "where")
        assert (where["state"], where["try_number"]) == ("success", 1), where
        assert run["state"] == "success", [(t["task_id"], t["state"], t["try_number"]) for t in tis]
        # the test VMs share one kernel: one CLOCK_MONOTONIC
        last_api_start = max(unit_active_since(host, "airflow-api-server") for host in api_hosts)
        for name in groups["airflow_worker"]:
            worker_started = unit_active_since(hosts[name], "airflow-worker")
            assert worker_started > last_api_start, f"{name}'s worker started before the last api-server moved"
            assert ":8081/execution/" in hosts[name].file(CFG).content_string, f"{name}: the execution API URL did not move"
    finally:
        back = run_playbook("playbooks/site.yml", CONVERGE_VARS)
    assert_ok(back, "site.yml back on 8080")
    run, tis = admin_api(url_host).run_dag("smoke_celery")
    assert run["state"] == "success", [(t["task_id"], t["state"]) for t in tis]


def test_a_limited_run_with_another_airflow_version_is_refused(hosts):
    """A run that leaves hosts out (--limit, as when a host is added) with an
    airflow_version other than the one they run: refused, naming both, before
    anything changes (a host of the run would migrate the database under
    them). Preflight read the release of each host left out."""
    running = hosts["worker2"].check_output("readlink /opt/airflow/current").split("/")[-1].split("-py")[0]
    other = "3.0.2" if running != "3.0.2" else "3.3.2"
    # (3.0.2's workers take no self-signed certificate: plain HTTP for this run's checks)
    limited = run_playbook("playbooks/site.yml", {**CONVERGE_VARS, "airflow_version": other, "airflow_api_tls": False},
                           "--limit", "worker1,data1")
    assert_refused_unchanged(limited, f"airflow_version {other} is not what the Airflow hosts outside this run",
                             f"run: {running};")


@pytest.mark.parametrize("playbook, extra_vars, limit, needs, left_out", [
    ("playbooks/restore.yml", {"restore_backup": "none.dump", "restore_confirm": "yes"}, "data1", "A restore stops",
     {"core1", "core2", "worker1", "worker2"}),
    ("playbooks/reset.yml", {"reset_confirm": "yes"}, "core1", "A reset stops every component",
     {"data1", "core2", "worker1", "worker2"}),
    # a worker: its check of the cluster's health runs on an api-server (worker2, the only worker of queue extra,
    # is refused first); the outsider holds no secret
    ("playbooks/retire.yml", {"retire_host": "worker1"}, "worker1", "Retiring worker1 stops it once", {"core1"}),
    ("playbooks/rotate.yml", {"rotate_secret": "redis"}, "localhost,core1", "Every host of groups airflow, postgresql, redis",
     {"data1", "core2", "worker1", "worker2"}),
])
def test_a_run_whose_limit_leaves_out_a_host_it_needs_is_refused(playbook, extra_vars, limit, needs, left_out):
    """A --limit that leaves out a host a later play runs on (which would
    match no host and skip its checks or steps: a restore or reset under
    running components, the retire checks, a secret some hosts never get):
    refused before anything changes, naming the hosts left out."""
    result = run_playbook(playbook, {**CONVERGE_VARS, **extra_vars}, "--limit", limit)
    assert_refused_unchanged(result, needs, "(outside --limit, or unreachable or failed earlier in this run). Stopped before anything that needs them")
    output = result.stdout + result.stderr
    named = re.search(r"missing ([\w, -]+) \(outside --limit", " ".join(output.split()))
    assert named and set(named.group(1).split(", ")) == left_out, output[-3000:]


# --- last: retiring a worker (it stays out of service) ------------------------


def test_retire_is_refused_while_no_other_host_runs_a_live_scheduler(hosts):
    """core2 while core1's scheduler is stopped: Airflow's health endpoint,
    asked first, counts core2's own scheduler and says healthy, but the
    retire would stop the last live one: refused before anything changes,
    naming the kind and where to start it; core2 keeps running."""
    with hosts["core1"].sudo():
        hosts["core1"].run_expect([0], "systemctl stop airflow-scheduler")
    try:
        refused = run_playbook("playbooks/retire.yml", {**CONVERGE_VARS, "retire_host": "core2"})
        assert_refused_unchanged(refused, "retire_host: core2 runs the only live scheduler (no job of another host",
                                 "start or repair one on core1 first")
        for unit in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-api-server"):
            assert hosts["core2"].service(unit).is_running, f"a refused retire stopped core2's {unit}"
    finally:
        with hosts["core1"].sudo():
            hosts["core1"].run_expect([0], "systemctl start airflow-scheduler")


def test_retire_is_refused_for_unknown_hosts_and_the_execution_api(groups, hosts):
    """Refused before anything changes: a host the inventory lacks, the first
    api-server (airflow_api_url unset: the default names it), the second
    when airflow_api_url names it by its address and refers to a default of
    the role (the URL is resolved as the role resolves it)."""
    unknown = run_playbook("playbooks/retire.yml", {**CONVERGE_VARS, "retire_host": "no-such-host"})
    assert_refused_unchanged(unknown, "retire_host (HOST=)", "no-such-host")
    first, second = groups["airflow_api_server"][:2]
    refused = run_playbook("playbooks/retire.yml", {**CONVERGE_VARS, "retire_host": first})
    assert_refused_unchanged(refused, f"retire_host: {first} serves the execution API",
                             f"https://{address(hosts[first])}:8080/execution/")
    url = f"https://{address(hosts[second])}:{{{{ airflow_api_port }}}}"
    named = run_playbook("playbooks/retire.yml", {**CONVERGE_VARS, "retire_host": second, "airflow_api_url": url})
    assert_refused_unchanged(named, f"retire_host: {second} serves the execution API",
                             f"https://{address(hosts[second])}:8080/execution/")
    for name in groups["airflow_api_server"]:
        assert hosts[name].service("airflow-api-server").is_running, f"a refused retire stopped {name}'s api-server"
    # the only worker of the queue `extra` (host_vars/worker2.yml)
    last = run_playbook("playbooks/retire.yml", {**CONVERGE_VARS, "retire_host": "worker2"})
    assert_refused_unchanged(last, "retire_host: worker2 is the only worker of the queue(s) extra")
    assert hosts["worker2"].service("airflow-worker").is_running, "a refused retire stopped worker2's worker"


def _only_worker_of_a_queue(groups) -> set[str]:
    """Worker hosts that alone consume one of their queues (host_vars; the
    role's default queue where none is set): make retire refuses them."""
    queues = {}
    for name in groups["airflow_worker"]:
        path = Path(__file__).resolve().parents[1] / "host_vars" / f"{name}.yml"
        host_vars = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
        queues[name] = set(host_vars.get("airflow_worker_queues", ["default"]))
    return {name for name, mine in queues.items() if mine - set().union(*(q for other, q in queues.items() if other != name))}


def test_retire_a_worker_while_it_runs_a_task(api, hosts, groups):
    """`make retire HOST=<worker>` while that worker runs a task: the task
    finishes there, the worker's units are stopped and disabled, and new
    tasks go to the other worker."""
    # a run whose task lands on a worker that retire accepts (not the only
    # worker of a queue: retire refuses it, tested above)
    kept = _only_worker_of_a_queue(groups)
    assert set(groups["airflow_worker"]) - kept, f"every worker is the only one of a queue: {kept}"
    # (a run that lands on a kept worker goes on there: the next is
    # triggered at once, and those runs must succeed too, untouched)
    deadline, elsewhere = time.monotonic() + 300, []
    while True:
        run_id = api.trigger("smoke_celery", {"linger": 40})
        while True:
            ti = api.get(f"/api/v2/dags/smoke_celery/dagRuns/{run_id}/taskInstances/where").json()
            if ti.get("state") == "running" and ti.get("hostname"):
                break
            assert time.monotonic() < deadline, f"where not running within 300 s: {ti}"
            time.sleep(1)
        if ti["hostname"] not in kept:
            break
        elsewhere.append(run_id)
    retiring = ti["hostname"]
    assert retiring in groups["airflow_worker"], ti

    start = time.monotonic()
    retired = run_playbook("playbooks/retire.yml", {**CONVERGE_VARS, "retire_host": retiring})
    print(f"\nmake retire HOST={retiring} (its task had up to 40 s left): {time.monotonic() - start:.0f} s")
    assert_ok(retired)
    run, tis = api.wait_run("smoke_celery", run_id)
    where = next(t for t in tis if t["task_id"] == "where")
    assert (where["state"], where["try_number"], where["hostname"]) == ("success", 1, retiring), where
    assert run["state"] == "success", [(t["task_id"], t["state"], t["hostname"]) for t in tis]
    for other in elsewhere:
        run, tis = api.wait_run("smoke_celery", other)
        assert run["state"] == "success", [(t["task_id"], t["state"], t["try_number"], t["hostname"]) for t in tis]
    for unit in ("airflow-worker", "airflow-maintenance.timer"):
        service = hosts[retiring].service(unit)
        assert not service.is_running and not service.is_enabled, f"{retiring}: {unit} still running or enabled"

    others = set(groups["airflow_worker"]) - {retiring}
    run, tis = api.run_dag("smoke_celery")
    assert run["state"] == "success" and {t["hostname"] for t in tis} <= others, [(t["task_id"], t["hostname"]) for t in tis]
