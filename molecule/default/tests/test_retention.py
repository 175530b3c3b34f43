"""Retention on the real stack: the daily upkeep (airflow-maintenance.timer)
removes log files older than airflow_log_retention_days and metadata rows
older than airflow_db_retention_days (`airflow db clean`), and leaves newer
ones alone. The test makes an old and a new log file and an old and a new
row of Airflow's `log` table, then runs the timer's service once.

A deploy trims the caches: an installer cache above
airflow_installer_cache_max_mb goes (a smaller one stays), and the
controller keeps the newest airflow_releases_keep release archives of the
hosts' OS release plus every release a host needs."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import testinfra.utils.ansible_runner
import yaml

from airflow_testlib import (
    INVENTORY,
    ROOT,
    assert_ok,
    changed_tasks,
    metadata_sql,
    playbook_tail,
    release_of,
    run_playbook,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_scheduler")

LOGS = "/var/log/airflow"
# the role's defaults: 30 days of logs, 90 days of metadata rows
OLD_LOG_DAYS, OLD_ROW_DAYS = 31, 91
UV_CACHE, PIP_CACHE = "/var/cache/airflow-uv", "/var/cache/airflow-pip"
# airflow_release_cache_dir's default, on this controller
RELEASE_CACHE = Path(os.environ["HOME"]) / ".cache/airflow-vm/releases"
# the release archives (vars/main.yml: _airflow_release_suffix)
ARCHIVE = ".tar.zst"


def test_upkeep_timer_is_scheduled(host):
    """At airflow_maintenance_schedule (systemd's normal form of the default), with a next run."""
    timer = host.service("airflow-maintenance.timer")
    assert timer.is_enabled and timer.is_running
    assert host.file("/etc/systemd/system/airflow-maintenance.service").exists
    default = yaml.safe_load((ROOT / "roles/airflow/defaults/main.yml").read_text())["airflow_maintenance_schedule"]
    schedule = host.ansible.get_variables().get("airflow_maintenance_schedule", default)
    assert host.check_output("systemctl show -p TimersCalendar --value airflow-maintenance.timer").startswith(
        f"{{ OnCalendar={schedule} ;"
    ), "the timer is not at airflow_maintenance_schedule"
    assert host.check_output("systemctl show -p NextElapseUSecRealtime --value airflow-maintenance.timer"), "no next run"


def test_upkeep_removes_only_what_is_old(host):
    marker = uuid.uuid4().hex
    old_dir = f"{LOGS}/dag_id=retention_old_{marker}"
    old_log, new_log = f"{old_dir}/attempt=1.log", f"{LOGS}/retention_new_{marker}.log"
    host.check_output(
        f"install -d -o airflow -g airflow {old_dir} && runuser -u airflow -- touch {old_log} {new_log}"
        f" && touch -d '{OLD_LOG_DAYS} days ago' {old_log}"
    )
    metadata_sql(
        host,
        f"INSERT INTO log (dttm, event, extra) VALUES (now() - interval '{OLD_ROW_DAYS} days', 'retention-test', 'old-{marker}'),"
        f" (now(), 'retention-test', 'new-{marker}')",
    )

    start = time.monotonic()
    run = host.run("systemctl start airflow-maintenance.service")
    print(f"\nairflow-maintenance.service (log pruning, airflow db clean): {time.monotonic() - start:.0f} s")
    journal = host.run("journalctl -u airflow-maintenance.service -n 30 --no-pager -o cat").stdout
    assert run.rc == 0, f"{run.stderr}\n{journal}"

    assert not host.file(old_log).exists, f"{old_log} ({OLD_LOG_DAYS} days old) kept\n{journal}"
    assert not host.file(old_dir).exists, f"the emptied {old_dir} kept"
    assert host.file(new_log).exists, f"{new_log} (new) removed"
    kept = metadata_sql(host, f"SELECT extra FROM log WHERE event = 'retention-test' AND extra LIKE '%-{marker}' ORDER BY extra")
    assert kept.split() == [f"new-{marker}"], f"log rows left: {kept!r}\n{journal}"
    host.check_output(f"rm -f {new_log}")


def test_deploy_trims_installer_caches_and_release_archives(host):
    marker = uuid.uuid4().hex[:12]
    # the pip cache stays under the cap, the uv cache goes over it
    host.check_output(f"install -d -m 0755 {UV_CACHE} {PIP_CACHE} && touch {PIP_CACHE}/kept-{marker}")
    pip_mb = int(host.check_output(f"du -sm {PIP_CACHE}").split()[0])
    cap = pip_mb + 1
    host.check_output(f"head -c {pip_mb + 3}M /dev/zero > {UV_CACHE}/big-{marker}")

    # the controller's archives of this OS release: three old ones no host
    # needs and one newer than all (a stand-in, aged like the old ones, for
    # the running release's archive when this controller has none). With
    # airflow_releases_keep 1 the newest stays, and so must the archives of
    # the running and the previous release although they are not the newest.
    info = host.system_info
    os_dir = RELEASE_CACHE / f"{info.distribution}-{info.release.split('.')[0]}-{info.arch}"
    RELEASE_CACHE.parent.parent.mkdir(parents=True, exist_ok=True)
    for folder in (RELEASE_CACHE.parent, RELEASE_CACHE, os_dir):
        folder.mkdir(mode=0o700, exist_ok=True)  # private, as the role makes them
    current = release_of(host)
    ages = {f"0.0.{age}-py3.11-{marker}": age for age in (3000, 2000, 1000)}
    ages[f"9.9.9-py3.11-{marker}"] = -1  # a day ahead: the newest
    if not (os_dir / f"{current}{ARCHIVE}").exists():
        ages[current] = 500
    made = [os_dir / f"{name}{suffix}" for name in ages for suffix in (ARCHIVE, f"{ARCHIVE}.sha256")]
    for path in made:
        path.write_text(path.name)
        age = ages[path.name.split(ARCHIVE)[0]]
        os.utime(path, (time.time() - age * 86400,) * 2)
    needed = {current, release_of(host, "previous")}
    kept = {os_dir / f"9.9.9-py3.11-{marker}{ARCHIVE}", *(os_dir / f"{name}{ARCHIVE}" for name in needed if name)}
    kept &= set(os_dir.glob(f"*{ARCHIVE}"))

    try:
        result = run_playbook("playbooks/site.yml", {"airflow_installer_cache_max_mb": cap, "airflow_releases_keep": 1})
        assert_ok(result)
        changed = {task.split(" -> ")[0] for task in changed_tasks(result)}
        assert changed == {
            "airflow : Remove installer caches above airflow_installer_cache_max_mb",
            "airflow : Prune the controller's release archives",
        }, playbook_tail(result)
        assert not host.file(UV_CACHE).exists, f"{UV_CACHE} ({pip_mb + 3} MB or more) kept with a cap of {cap} MB"
        assert host.file(f"{PIP_CACHE}/kept-{marker}").exists, f"{PIP_CACHE} ({pip_mb} MB) removed with a cap of {cap} MB"
        left = set(os_dir.glob(f"*{ARCHIVE}"))
        assert left == kept, f"kept {sorted(p.name for p in left)}, expected {sorted(p.name for p in kept)}"
        assert {path.name for path in os_dir.glob("*.sha256")} == {f"{path.name}.sha256" for path in kept}
    finally:
        for path in made:
            path.unlink(missing_ok=True)
        host.run(f"rm -f {PIP_CACHE}/kept-{marker}")
