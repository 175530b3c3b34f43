"""Backup, the disaster (`make reset`), restore: on the running host.

`make backup FETCH=yes` and the timer's dump; a dump refused on a full disk
(the timer's failure shown by `make status`);
`make restore` refused with a dump that is not there, one pg_restore cannot
read whole (cut short), without room to load it and without CONFIRM=yes
(nothing stops), its dry run (the room it checked, nothing stops), and failed by a dump that does not load (the database
stays as it was); then
`make reset CONFIRM=yes` wipes the database, the broker and the logs, the
dumps on the host go too (as on a new database host), and `make restore`
brings back the copy on the controller: the run history, a Variable and the
encrypted Connection are there and a task reads them, what was made after
the dump is not, every component runs, and a re-deploy changes nothing.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import testinfra.utils.ansible_runner

from airflow_testlib import (
    COMPONENT_UNITS,
    INVENTORY,
    admin_api,
    assert_fetched_whole,
    assert_refused_unchanged,
    assert_ok,
    assert_task_reads,
    assert_unchanged,
    playbook_tail,
    run_playbook,
    store_secrets,
    unit_active_since,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_api_server")
BACKUP_DIR = "/var/backups/postgresql"


def test_backup_then_reset_then_restore(host, api, tmp_path):
    assert host.service("postgresql-backup.timer").is_enabled, "the scheduled dump is off"
    assert host.service("postgresql-backup.timer").is_running
    stored = store_secrets(api, "restore")
    lost = f"lost-{uuid.uuid4().hex}"
    run, tis = api.run_dag("smoke_celery")
    assert run["state"] == "success", [(ti["task_id"], ti["state"]) for ti in tis]
    history = run["dag_run_id"]

    fetch_dir = tmp_path / "backups"
    start = time.monotonic()
    result = run_playbook("playbooks/backup.yml", {"backup_fetch": "yes", "backup_fetch_dir": str(fetch_dir)})
    print(f"\nmake backup FETCH=yes: {time.monotonic() - start:.0f} s")
    assert_ok(result)
    dump = re.search(rf"({BACKUP_DIR}/airflow-\d{{8}}T\d{{6}}Z\.dump)", result.stdout).group(1)
    name = Path(dump).name
    fetched = fetch_dir / name
    # streamed from a copy of the login user's (the role's fetch), which is gone
    assert_fetched_whole(host, dump, fetched)
    assert oct(fetch_dir.stat().st_mode & 0o777) == "0o700" and oct(fetched.stat().st_mode & 0o777) == "0o600"
    assert (host.file(dump).user, host.file(dump).mode) == ("postgres", 0o600), "the dump is readable by others"

    before = host.check_output(f"ls {BACKUP_DIR}").split()
    timer_run = host.run("systemctl start postgresql-backup.service")
    assert timer_run.rc == 0, timer_run.stderr
    made = set(host.check_output(f"ls {BACKUP_DIR}").split()) - set(before)
    assert len(made) == 1 and re.fullmatch(r"airflow-\d{8}T\d{6}Z\.dump", made.pop()), f"the timer's service made {made}"

    # a dump the backup folder has no room for is refused before it writes
    # (here a 64 MiB filesystem over the folder, less than
    # postgresql_backup_min_free_mb must leave free); the timer's run fails
    # too, which `make status` reports until a dump succeeds
    host.run_test(f"mount -t tmpfs -o size=64m tmpfs {BACKUP_DIR}")
    try:
        full = run_playbook("playbooks/backup.yml", {})
        timer_full = host.run("systemctl start postgresql-backup.service")
        listed = host.check_output(f"ls -A {BACKUP_DIR}")
    finally:
        host.run_test(f"umount {BACKUP_DIR}")
    out = full.stdout + full.stderr
    assert full.returncode != 0 and re.search(r"No\s+dump\s+was\s+taken", out), playbook_tail(full)
    assert "postgresql_backup_min_free_mb" in out and re.search(r"\d+ MiB free", out), playbook_tail(full)
    journal = host.run("journalctl -u postgresql-backup.service -n 20 --no-pager").stdout
    assert timer_full.rc != 0 and "No dump was taken" in journal, f"the timer's service on a full disk: {journal}"
    assert not listed, f"the refused dumps left {listed}"
    status = run_playbook("playbooks/status.yml", {})
    out = status.stdout + status.stderr
    assert status.returncode != 0 and re.search(r"postgresql-backup\.service\s+failed", out), playbook_tail(status)
    assert_ok(run_playbook("playbooks/backup.yml", {}), "make backup with room again")
    assert host.run("systemctl is-failed --quiet postgresql-backup.service").rc != 0, "a good dump left the failure"

    running = [unit for unit in COMPONENT_UNITS.values() if host.service(unit).is_enabled]

    def since() -> dict[str, str]:
        """When each component (re)started last."""
        return {unit: unit_active_since(host, unit) for unit in running}

    started = since()

    def kept(key: str) -> str:
        """How many Variables named key the database holds."""
        return host.check_output(f"runuser -u postgres -- psql -tA -d airflow -c \"SELECT count(*) FROM variable WHERE key = '{key}'\"")

    # made after the dump: a run that restored it would drop this one
    assert api.post("/api/v2/variables", {"key": f"{stored.variable}_lost", "value": lost}).status_code == 201
    # refused before anything stops, side by side (each changes nothing): a
    # dump that is not there, one without CONFIRM=yes, a dump cut short (its
    # table of contents reads, its data does not), which the room estimate
    # (it reads the dump whole) refuses; and a dry run (--check --diff),
    # which prints the room it checked and stops nothing
    cut_dump = f"{BACKUP_DIR}/airflow-cut.dump"
    host.check_output(f"umask 077 && head -c $(($(stat -c %s {dump}) / 2)) {dump} > {cut_dump} && chown postgres: {cut_dump}")
    confirmed = {"restore_backup": name, "restore_confirm": "yes"}
    runs = {
        "missing": ({"restore_backup": "airflow-nope.dump", "restore_confirm": "yes"},),
        "unconfirmed": ({"restore_backup": name},),
        "cut": ({"restore_backup": "airflow-cut.dump", "restore_confirm": "yes"},),
        "dry": (confirmed, "--check", "--diff"),
    }
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        done = dict(zip(runs, pool.map(lambda args: run_playbook("playbooks/restore.yml", *args), runs.values())))
    assert_refused_unchanged(done["missing"], "airflow-nope.dump is not a dump", name)
    assert_refused_unchanged(done["unconfirmed"], "restore_confirm", "CONFIRM=yes")
    assert_refused_unchanged(done["cut"], "pg_restore cannot read", "airflow-cut.dump whole")
    assert_ok(done["dry"], "restore.yml --check --diff")
    dry = " ".join((done["dry"].stdout + done["dry"].stderr).split())
    assert re.search(rf"{re.escape(dump)}: the restore needs about \d+ MiB", dry), playbook_tail(done["dry"])
    # then, alone (its run writes the dump script with its own reserve), a
    # restore the data directory has no room for
    roomless = run_playbook("playbooks/restore.yml", {**confirmed, "postgresql_backup_min_free_mb": 10**9})
    said = " ".join((roomless.stdout + roomless.stderr).split())
    assert roomless.returncode != 0 and re.search(r"MiB free; restoring", said), playbook_tail(roomless)
    assert "postgresql_backup_min_free_mb (1000000000 MiB)" in said and "is unchanged" in said, playbook_tail(roomless)
    assert since() == started, "a refused restore or the dry run stopped or restarted a component"
    assert kept(f"{stored.variable}_lost") == "1", "the database changed"

    # a dump that reads whole but does not load (a table owned by a role this
    # server does not have) fails the restore, which leaves the database as
    # it was (the variable made after the dump too)
    ghost_dump = f"{BACKUP_DIR}/airflow-ghost.dump"
    host.check_output(
        "runuser -u postgres -- sh -ec 'umask 077; dropdb --if-exists ghost_src; psql -q -c \"DROP ROLE IF EXISTS ghost\";"
        " createdb ghost_src; psql -q -d ghost_src -c \"CREATE ROLE ghost; CREATE TABLE t ();"
        f" ALTER TABLE t OWNER TO ghost\"; pg_dump -Fc -f {ghost_dump} ghost_src; dropdb ghost_src; psql -q -c \"DROP ROLE ghost\"'"
    )
    ghost = run_playbook("playbooks/restore.yml", {"restore_backup": "airflow-ghost.dump", "restore_confirm": "yes"})
    out = ghost.stdout + ghost.stderr
    assert ghost.returncode != 0 and re.search(r"did\s+not\s+load", out), playbook_tail(ghost)
    assert re.search(r"role\W+ghost\W+does\s+not\s+exist", out), playbook_tail(ghost)
    assert kept(f"{stored.variable}_lost") == "1", "the database changed"
    left = host.check_output("runuser -u postgres -- psql -tA -c \"SELECT datname FROM pg_database WHERE datname LIKE '%restoring'\"")
    assert not left, f"the failed restore left {left}"
    wiped = run_playbook("playbooks/reset.yml", {"reset_confirm": "yes"})
    assert_ok(wiped)
    assert not host.service("airflow-api-server").is_running, "reset.yml left the api-server running"
    # as on a new database host: no dump there, the controller's copy is restored
    host.run_test(f"rm -r {BACKUP_DIR}")

    start = time.monotonic()
    restored = run_playbook("playbooks/restore.yml", {"restore_backup": str(fetched), "restore_confirm": "yes"})
    print(f"make restore BACKUP=<the controller's dump> after make reset: {time.monotonic() - start:.0f} s")
    assert_ok(restored)
    # the room it asked for (printed before anything stopped) held the
    # restored database
    estimate = int(re.search(r"the restore needs about\s+\d+\s+MiB\s+\((\d+)\s+bytes\)", restored.stdout).group(1))
    size = int(host.check_output("runuser -u postgres -- psql -tA -c \"SELECT pg_database_size('airflow')\""))
    print(f"restore room estimate {estimate >> 20} MiB, restored database {size >> 20} MiB")
    assert size <= estimate, f"the restored database takes {size} bytes, the restore asked for room for {estimate}"
    copied = host.file(dump)
    assert (copied.user, copied.mode) == ("postgres", 0o600), "the copied dump is readable by others"
    assert copied.sha256sum == hashlib.sha256(fetched.read_bytes()).hexdigest(), "not the controller's dump"
    assert running and not [unit for unit in running if not host.service(unit).is_running], running
    client = admin_api(host)
    resp = client.get(f"/api/v2/variables/{stored.variable}")
    assert resp.status_code == 200 and resp.json()["value"] == stored.value, resp.text[:300]
    assert client.get(f"/api/v2/variables/{stored.variable}_lost").status_code == 404, "made after the dump, yet restored"
    resp = client.get(f"/api/v2/dags/smoke_celery/dagRuns/{history}")
    assert resp.status_code == 200 and resp.json()["state"] == "success", resp.text[:300]
    assert_task_reads(client, stored)

    again = run_playbook("playbooks/site.yml", {})
    assert_unchanged(again)
