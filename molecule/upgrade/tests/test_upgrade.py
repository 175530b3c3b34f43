"""Day 2 on a real cluster (up-data, up-core1, up-core2, up-worker), in file
order, each step building on the one before:

1. a configuration change rolls through the hosts one at a time: some
   api-server is healthy every second, a running task finishes, every
   component restarts on the new airflow.cfg, and a re-run changes nothing;
2. an upgrade of the seed's 3.0.2 to 3.3.2 while a task runs: the
   database is backed up and migrated once, history, Variables and
   Connections (decrypted with the same Fernet key) survive, the API is away
   only for the migration (plus UPGRADE_WINDOW_SLACK s) and the new
   api-server's cold start (figures printed and written to .results.json),
   the UI works on the new version;
3. a rollback: refused without CONFIRM=yes; with it, the pre-upgrade backup
   is restored (what was made on 3.3.2 is gone, what was there before is
   not) and 3.0.2 runs tasks and serves the UI again;
4. the upgrade again, without room for its dump: refused before the
   workers drain, nothing restarted or switched.

Figures (wall times, seconds without a healthy api-server, migration time)
are printed and written to molecule/upgrade/.results.json.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import time
import uuid
from pathlib import Path

from airflow_testlib import (
    AIRFLOW_INSTALL_ROOT,
    CFG,
    AirflowAPI,
    HealthProbe,
    admin_api,
    api_url,
    api_version,
    assert_ok,
    assert_unchanged,
    assert_virtualenv_task,
    browser_dag_list,
    changed_count,
    cli_json,
    host_monotonic,
    host_units,
    playbook_tail,
    release_of,
    restart_markers,
    run_playbook,
    switch_info,
    unit_active_since,
    vault,
    wait_task_running,
)

FROM_VERSION = os.environ.get("EXPECTED_AIRFLOW_VERSION", "3.0.2")
TO_VERSION = os.environ.get("UPGRADE_TO_VERSION", "3.3.2")
SCENARIO = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY") or Path(__file__).resolve().parents[1])
# every site.yml run ships this scenario's DAGs, as converge does (without it
# the role's default, the repo's dags/, would replace them mid-test)
DAGS = f"{SCENARIO / 'dags'}/"
# the controller's release cache of this run, as converge has it (molecule.yml)
RELEASE_CACHE = f"{os.environ['MOLECULE_EPHEMERAL_DIRECTORY']}/releases"
RESULTS = SCENARIO / ".results.json"
# playbook outputs and UI screenshots; outside molecule's ephemeral directory,
# which its destroy step removes
ARTIFACTS = Path(tempfile.gettempdir()) / f"molecule-{SCENARIO.name}"
BACKUP_DIR = "/var/backups/postgresql"
DAG_IDS = ("upgrade_long", "upgrade_quick")
VARIABLE = "upgrade_kept_variable"
CONNECTION = "upgrade_kept_connection"
AFTER_UPGRADE = "after_upgrade"
# what a test hands on to the next one (they run in file order)
STATE: dict = {}
# The API is away from the api-servers' stop (the last component stopped
# before `airflow db migrate`) until the first new one answers. That window
# is split at the api-servers' start (their units' ActiveEnterTimestamp, on
# the probe's clock): before it, the migration plus at most
# UPGRADE_WINDOW_SLACK s (stopping the api-server, the link switch, task
# overhead); after it, the new api-server's own cold start, at most
# API_COLD_START_LIMIT s on the loaded 2-core test machine. All figures are
# printed and kept in .results.json.
UPGRADE_WINDOW_SLACK = 15
API_COLD_START_LIMIT = 90


@functools.cache
def admin_password() -> str:
    """From the vault; not a fixture, so that no failure report prints it."""
    return vault()["vault_airflow_admin_password"]


def playbook(name: str, extra_vars: dict, log: str, *options: str):
    """playbooks/<name> as a user runs it; returns (result, wall seconds). Its
    output goes to ARTIFACTS/<log>.log (the place is printed)."""
    start = time.monotonic()
    result = run_playbook(f"playbooks/{name}", {"airflow_release_cache_dir": RELEASE_CACHE, **extra_vars}, *options)
    took = time.monotonic() - start
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    where = ARTIFACTS / f"{log}.log"
    where.write_text(f"# {name} {json.dumps(extra_vars)}: rc={result.returncode}, {took:.1f} s\n{result.stdout}\n{result.stderr}")
    print(f"\n{name} {json.dumps(extra_vars)}: rc={result.returncode}, {took:.1f} s, output in {where}")
    return result, took


def site(extra_vars: dict, log: str, *options: str):
    """playbooks/site.yml with this scenario's DAGs; returns (result, wall seconds)."""
    return playbook("site.yml", {"airflow_dags_src": DAGS, **extra_vars}, log, *options)


def record(stage: str, **figures) -> None:
    """Add a stage's figures to .results.json (a new file for each session)."""
    data = {} if not STATE.get("results_started") else json.loads(RESULTS.read_text())
    STATE["results_started"] = True
    data[stage] = {**figures, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def ti_states(tis: list[dict]) -> list[tuple]:
    return [(ti["task_id"], ti["state"], ti["try_number"], ti["hostname"]) for ti in tis]


def assert_long_run_succeeded(api: AirflowAPI, run_id: str, groups) -> None:
    """The long task ran to its end on its first try, on a worker."""
    run, tis = api.wait_run("upgrade_long", run_id, timeout=400)
    assert run["state"] == "success", f"upgrade_long {run_id}: {run['state']} {ti_states(tis)}"
    assert [(ti["state"], ti["try_number"]) for ti in tis] == [("success", 1)], ti_states(tis)
    assert tis[0]["hostname"] in groups["airflow_worker"], ti_states(tis)


def assert_versions(api_hosts, version: str) -> None:
    answers = {api_url(host): api_version(api_url(host)) for host in api_hosts}
    assert set(answers.values()) == {version}, answers


def assert_ui_lists_dags(api_hosts, stage: str) -> None:
    """Log in through the UI of each api-server in a headless browser; its
    /dags shows our DAGs (screenshots: ARTIFACTS/ui-<stage>-<host>.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for host in api_hosts:
        shot = ARTIFACTS / f"ui-{stage}-{host.backend.host}.png"
        shown = browser_dag_list(api_url(host), "admin", admin_password(), expect=DAG_IDS, screenshot=str(shot))
        assert set(DAG_IDS) <= set(shown), shown


def assert_kept_connection(host, password: str) -> None:
    """The Connection's password, decrypted by the CLI with the deployed Fernet key."""
    conn = cli_json(host, f"connections get {CONNECTION}")
    conn = conn[0] if isinstance(conn, list) else conn
    assert conn["conn_id"] == CONNECTION, conn.get("conn_id")
    assert conn["password"] == password, "the Connection's password does not decrypt to what was stored"


def test_converge_deployed_the_seed_version(groups, hosts, api_hosts):
    assert_versions(api_hosts, FROM_VERSION)
    for name in groups["airflow"]:
        assert release_of(hosts[name]).startswith(f"{FROM_VERSION}-py"), f"{name}: current is {release_of(hosts[name])}"
    api = admin_api(api_hosts[0])
    for dag_id in DAG_IDS:
        api.wait_for_dag(dag_id)
    # 3.0.2's lock brings uv, which refuses a venv's python: task
    # virtualenvs must come from `python -m venv` ([standard] venv_install_method)
    assert_virtualenv_task(api, hosts[groups["airflow_worker"][0]])


def test_config_change_rolls_without_api_gap(groups, hosts, api_hosts):
    api = admin_api(api_hosts[0])
    long_run = api.trigger("upgrade_long", {"seconds": 60})
    wait_task_running(api, "upgrade_long", long_run, "sleep_for")
    airflow_hosts = groups["airflow"]
    before = {name: host_monotonic(hosts[name]) for name in airflow_hosts}
    # core.max_active_tasks_per_dag is read by more than one kind of
    # component (the DAG processor and the scheduler): every component of
    # every host restarts (core.parallelism alone would restart only the
    # schedulers: the default scenario checks that)
    config = {"core": {"parallelism": 48, "max_active_tasks_per_dag": 24}}
    extra_vars = {"airflow_version": FROM_VERSION, "airflow_config": config}

    with HealthProbe([api_url(host) for host in api_hosts]) as probe:
        result, took = site(extra_vars, "upgrade-config-change")
    print(f"\nconfig change (rolling restart): site.yml {took:.1f} s; {probe.summary()}")
    record("config_change", wall_seconds=round(took, 1), gap_seconds=probe.gap_seconds, probed_seconds=len(probe.samples))
    assert_ok(result, "site.yml with a config change")

    assert_long_run_succeeded(admin_api(api_hosts[0]), long_run, groups)
    STATE["earlier_runs"] = [("upgrade_long", long_run)]
    for name in airflow_hosts:
        written = hosts[name].file(CFG).content_string
        for option, value in config["core"].items():
            assert re.search(rf"^{option} = {value}$", written, re.MULTILINE), f"{name}: {CFG} has no {option} = {value}"
    stale = [
        f"{name}:{unit}"
        for name in airflow_hosts
        for unit in host_units(name, groups)
        if not hosts[name].service(unit).is_running or unit_active_since(hosts[name], unit) <= before[name]
    ]
    assert not stale, f"not (re)started by the run: {stale}"
    assert probe.gap_seconds == 0, f"the API was away during a rolling restart: {probe.summary()}"

    again, took = site(extra_vars, "upgrade-config-change-again")
    print(f"same config again: site.yml {took:.1f} s, changed={changed_count(again)}")
    assert_unchanged(again, "site.yml re-run")


def test_a_dry_run_of_the_upgrade_changes_nothing(groups, hosts, api_hosts):
    """`make check` with the new airflow_version: it says which release each
    host would switch to, and switches, stops, migrates and backs up nothing."""
    def snapshot() -> dict:
        return {
            name: (
                release_of(hosts[name]),
                hosts[name].check_output("ls -A /opt/airflow/releases"),  # nothing built or shipped
                [unit_active_since(hosts[name], unit) for unit in host_units(name, groups)],
            )
            for name in groups["airflow"]
        } | {"backups": hosts[groups["postgresql"][0]].check_output(f"ls -A {BACKUP_DIR}")}

    before = snapshot()
    result, _ = site({"airflow_version": TO_VERSION}, "upgrade-dry-run", "--check", "--diff")
    assert_ok(result, f"site.yml --check --diff with airflow_version {TO_VERSION}")
    said = " ".join(result.stdout.split())
    for name in groups["airflow"]:
        assert re.search(rf"\[{re.escape(name)}\] => msg: would switch {re.escape(FROM_VERSION)}-py\S+ -> {re.escape(TO_VERSION)}-py", said), (
            f"the dry run does not say what {name} would switch to:\n{playbook_tail(result)}"
        )
    assert snapshot() == before, "the dry run changed a release link, restarted a component or took a backup"
    assert_versions(api_hosts, FROM_VERSION)


def test_upgrade_3_0_2_to_3_3_2(groups, hosts, api_hosts):
    api = admin_api(api_hosts[0])
    value, password = f"kept-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    resp = api.post("/api/v2/variables", {"key": VARIABLE, "value": value, "description": "made on the old version"})
    assert resp.status_code == 201, resp.text
    resp = api.post(
        "/api/v2/connections",
        {"connection_id": CONNECTION, "conn_type": "generic", "host": "db.invalid", "login": "kept", "password": password},
    )
    assert resp.status_code == 201, resp.text
    STATE.update(variable=value, password=password)
    earlier = list(STATE.get("earlier_runs", []))
    for _ in range(2):
        run, tis = api.run_dag("upgrade_quick")
        assert run["state"] == "success", ti_states(tis)
        earlier.append(("upgrade_quick", run["dag_run_id"]))
    long_run = api.trigger("upgrade_long", {"seconds": 90})
    wait_task_running(api, "upgrade_long", long_run, "sleep_for")

    with HealthProbe([api_url(host) for host in api_hosts]) as probe:
        result, took = site({"airflow_version": TO_VERSION}, "upgrade-upgrade")
    print(f"\nupgrade {FROM_VERSION} -> {TO_VERSION}: site.yml {took:.1f} s; {probe.summary()}")
    assert_ok(result, f"site.yml upgrading to {TO_VERSION}")
    assert_versions(api_hosts, TO_VERSION)

    api = admin_api(api_hosts[0])
    assert_long_run_succeeded(api, long_run, groups)
    for dag_id, run_id in earlier:
        resp = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        state = resp.json().get("state") if resp.status_code == 200 else None
        assert state == "success", f"{dag_id} {run_id}: {resp.status_code} {resp.text[:300]}"
    resp = api.get(f"/api/v2/variables/{VARIABLE}")
    assert resp.status_code == 200 and resp.json()["value"] == value, resp.text[:300]
    assert_kept_connection(hosts[groups["airflow_api_server"][0]], password)

    # one migration, recorded by every core host's switch
    switches = {name: switch_info(hosts[name]) for name in groups["airflow_api_server"]}
    for name, switch in switches.items():
        assert switch["migrated"] is True, f"{name}: {switch}"
        assert (switch["from_version"], switch["to_version"]) == (FROM_VERSION, TO_VERSION), f"{name}: {switch}"
        assert isinstance(switch["migration_seconds"], (int, float)), f"{name}: {switch}"
    # the window's record of the migration went with the switch that took it over
    for name in groups["airflow"]:
        assert not hosts[name].file(f"{AIRFLOW_INSTALL_ROOT}/switch-migrating.json").exists, f"{name}: the window's record stayed"
    migration = max(switch["migration_seconds"] for switch in switches.values())
    window = probe.longest_gap_window()
    assert window, f"the API was never away, yet the database was migrated: {probe.summary()}"
    api_started = min(unit_active_since(hosts[name], "airflow-api-server") for name in groups["airflow_api_server"])
    before_start, cold_start = api_started - window[0], window[1] - api_started
    print(
        f"upgrade: {probe.gap_seconds} s without a healthy api-server (longest {probe.longest_gap} s:"
        f" {before_start:.1f} s until the new api-servers started, migration {migration} s of it;"
        f" then {cold_start:.1f} s of their cold start); wall {took:.1f} s"
    )
    record(
        "upgrade",
        from_version=FROM_VERSION,
        to_version=TO_VERSION,
        wall_seconds=round(took, 1),
        gap_seconds=probe.gap_seconds,
        longest_gap_seconds=probe.longest_gap,
        migration_seconds=migration,
        away_until_api_start_seconds=round(before_start, 1),
        api_cold_start_seconds=round(cold_start, 1),
        probed_seconds=len(probe.samples),
    )

    # the backup taken before the migration, on the DB host
    data = hosts[groups["postgresql"][0]]
    dumps = data.run(f"ls -1t {BACKUP_DIR}/airflow-*-{FROM_VERSION}-to-{TO_VERSION}.dump").stdout.split()
    assert dumps, f"no airflow-*-{FROM_VERSION}-to-{TO_VERSION}.dump in {BACKUP_DIR} on {groups['postgresql'][0]}"
    assert {switch["backup"] for switch in switches.values()} <= set(dumps), f"switch.json names {switches}, on disk {dumps}"
    assert data.file(dumps[0]).size > 0, dumps[0]
    listing = data.run(f"pg_restore --list {dumps[0]}")
    assert listing.rc == 0, listing.stderr
    assert re.search(r"TABLE DATA public dag_run ", listing.stdout), "the dump holds no dag_run data"

    for name in groups["airflow"]:
        host = hosts[name]
        assert release_of(host).startswith(f"{TO_VERSION}-py"), f"{name}: current is {release_of(host)}"
        previous = release_of(host, "previous")
        assert previous.startswith(f"{FROM_VERSION}-py"), f"{name}: previous is {previous!r}"
        assert host.file(f"/opt/airflow/releases/{previous}/.complete").exists, f"{name}: {previous} not complete"

    assert_ui_lists_dags(api_hosts, "upgraded")
    assert probe.gap_seconds <= migration + UPGRADE_WINDOW_SLACK + cold_start + 5, f"the API was away outside the window: {probe.summary()}"
    assert before_start <= migration + UPGRADE_WINDOW_SLACK, (
        f"API away {before_start:.1f} s before the new api-servers started, the migration took {migration} s: {probe.summary()}"
    )
    assert cold_start <= API_COLD_START_LIMIT, f"the new api-servers took {cold_start:.1f} s to answer: {probe.summary()}"


def test_rollback(groups, hosts, api_hosts):
    assert "variable" in STATE, "needs the upgrade test before it"
    api = admin_api(api_hosts[0])
    resp = api.post("/api/v2/variables", {"key": AFTER_UPGRADE, "value": "made on the new version"})
    assert resp.status_code == 201, resp.text

    refused, _ = playbook("rollback.yml", {}, "upgrade-rollback-refused")
    assert refused.returncode != 0, f"rollback without confirmation ran:\n{playbook_tail(refused)}"
    assert "CONFIRM=yes" in refused.stdout + refused.stderr, playbook_tail(refused)
    assert_versions(api_hosts, TO_VERSION)

    with HealthProbe([api_url(host) for host in api_hosts]) as probe:
        result, took = playbook("rollback.yml", {"rollback_confirm": "yes"}, "upgrade-rollback")
    print(f"\nrollback {TO_VERSION} -> {FROM_VERSION}: rollback.yml {took:.1f} s; {probe.summary()}")
    record("rollback", wall_seconds=round(took, 1), gap_seconds=probe.gap_seconds, probed_seconds=len(probe.samples))
    assert_ok(result, "rollback.yml with rollback_confirm=yes")
    assert_versions(api_hosts, FROM_VERSION)
    for name in groups["airflow"]:
        assert release_of(hosts[name]).startswith(f"{FROM_VERSION}-py"), f"{name}: current is {release_of(hosts[name])}"

    api = admin_api(api_hosts[0])
    resp = api.get(f"/api/v2/variables/{AFTER_UPGRADE}")
    assert resp.status_code == 404, f"{AFTER_UPGRADE} survived the restore: {resp.status_code} {resp.text[:200]}"
    resp = api.get(f"/api/v2/variables/{VARIABLE}")
    assert resp.status_code == 200 and resp.json()["value"] == STATE["variable"], resp.text[:300]
    assert api.get(f"/api/v2/connections/{CONNECTION}").status_code == 200
    assert_kept_connection(hosts[groups["airflow_api_server"][0]], STATE["password"])

    run, tis = api.run_dag("upgrade_quick")
    assert run["state"] == "success", ti_states(tis)
    assert {ti["hostname"] for ti in tis} <= set(groups["airflow_worker"]), ti_states(tis)

    assert_ui_lists_dags(api_hosts, "rolled-back")


def test_an_upgrade_without_room_for_its_backup_is_refused_before_the_drain(groups, hosts, api_hosts):
    """After the rollback, the upgrade again, with less room for its dump
    than postgresql_backup_min_free_mb asks: refused by the dump script's
    check before the workers drain, naming the figures; no component
    restarted or marked for a restart, no release switched, no dump taken.
    (Last: the new release is still built, and the dump script keeps the
    test's reserve until the scenario's hosts go.)"""
    db_host = hosts[groups["postgresql"][0]]

    def snapshot() -> dict:
        return {
            name: (
                release_of(hosts[name]),
                [unit_active_since(hosts[name], unit) for unit in host_units(name, groups)],
                restart_markers(hosts[name]),
            )
            for name in groups["airflow"]
        } | {"backups": db_host.check_output(f"ls -A {BACKUP_DIR}")}

    before = snapshot()
    result, took = site({"airflow_version": TO_VERSION, "postgresql_backup_min_free_mb": 10**9}, "upgrade-no-room")
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and "No dump was taken" in out, playbook_tail(result)
    assert "postgresql_backup_min_free_mb (1000000000 MiB) must stay free" in out, playbook_tail(result)
    failed = re.findall(r"^TASK \[(?:\S+ : )?([^\]]+)\]", result.stdout, re.M)[-1]
    assert failed.startswith("Check the room for a dump"), f"refused at {failed!r}, not by the room check"
    after = snapshot()
    marked = {name: after[name][2] for name in groups["airflow"] if after[name][2]}
    assert not marked, f"the refused upgrade left components marked for a restart: {marked}"
    assert after == before, "the refused upgrade switched a release, restarted a component or took a dump"
    assert_versions(api_hosts, FROM_VERSION)
    print(f"upgrade refused for want of room: {took:.1f} s")
