"""Retention on the real stack: the daily upkeep (airflow-maintenance.timer)
removes log files older than airflow_log_retention_days and metadata rows
older than airflow_db_retention_days (`airflow db clean`), and leaves newer
ones alone. The test makes an old and a new log file and an old and a new
row of Airflow's `log` table, then runs the timer's service once."""

from __future__ import annotations

import time
import uuid

import testinfra.utils.ansible_runner

from airflow_testlib import INVENTORY

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_scheduler")

LOGS = "/var/log/airflow"
# the role's defaults: 30 days of logs, 90 days of metadata rows
OLD_LOG_DAYS, OLD_ROW_DAYS = 31, 91


def psql(host, sql: str) -> str:
    """One SQL statement on the metadata database, as postgres (same host)."""
    return host.check_output(f"runuser -u postgres -- psql -d airflow -tAc {sql!r}")


def test_upkeep_timer_is_scheduled(host):
    timer = host.service("airflow-maintenance.timer")
    assert timer.is_enabled and timer.is_running
    assert host.file("/etc/systemd/system/airflow-maintenance.service").exists


def test_upkeep_removes_only_what_is_old(host):
    marker = uuid.uuid4().hex
    old_dir = f"{LOGS}/dag_id=retention_old_{marker}"
    old_log, new_log = f"{old_dir}/attempt=1.log", f"{LOGS}/retention_new_{marker}.log"
    host.check_output(
        f"install -d -o airflow -g airflow {old_dir} && runuser -u airflow -- touch {old_log} {new_log}"
        f" && touch -d '{OLD_LOG_DAYS} days ago' {old_log}"
    )
    psql(
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
    kept = psql(host, f"SELECT extra FROM log WHERE event = 'retention-test' AND extra LIKE '%-{marker}' ORDER BY extra")
    assert kept.split() == [f"new-{marker}"], f"log rows left: {kept!r}\n{journal}"
    host.check_output(f"rm -f {new_log}")
