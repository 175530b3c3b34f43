"""Drift: a re-run reads each role's state in one call and skips what already
matches, so it must still see and put right what someone changed by hand:
a file's content, mode or owner, a directory's mode, the database role's
password and the database's owner, and an extra CA file written by a run
stopped before it updated the OS trust store."""

from __future__ import annotations

import testinfra.utils.ansible_runner

from airflow_testlib import (
    CA_BUNDLE,
    CA_DIR,
    INVENTORY,
    address,
    assert_ok,
    assert_unchanged,
    changed_count,
    postgresql_major,
    run_playbook,
    task_outcomes,
    vault,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_api_server")

UNIT = "/etc/systemd/system/airflow-triggerer.service"
CLI = "/usr/local/bin/airflow"
DAGS = "/var/lib/airflow/dags"
HBA = f"/etc/postgresql/{postgresql_major()}/main/pg_hba.conf"
PSQL = "runuser -u postgres -- psql -XAtq -d postgres -c"


def test_hand_made_changes_are_put_right(host):
    unit_before = host.file(UNIT).content_string
    with host.sudo():
        host.run_test(f"echo '# edited by hand' >> {UNIT}")
        host.run_test(f"chmod 0700 {CLI}")
        host.run_test(f"chmod 0777 {DAGS}")
        host.run_test(f"chown root {HBA}")
        host.run_test(f"""{PSQL} "ALTER ROLE airflow PASSWORD 'set-by-hand-0123456789'" """)
        host.run_test(f"""{PSQL} "ALTER DATABASE airflow OWNER TO postgres" """)
        # as a run killed between writing a CA file (a rename in the folder)
        # and update-ca-certificates leaves it: the folder newer than the bundle
        host.run_test(f"touch {CA_DIR}")

    fixed = run_playbook("playbooks/site.yml", {})
    assert_ok(fixed)
    assert changed_count(fixed) > 0

    assert host.file(UNIT).content_string == unit_before
    assert host.file(CLI).mode == 0o755
    assert host.file(DAGS).mode == 0o750
    assert host.file(HBA).user == "postgres"
    assert task_outcomes(fixed, "airflow : Update the OS trust store") == ["changed"]
    assert host.run(f"test {CA_BUNDLE} -nt {CA_DIR}").rc == 0, "the OS trust store is older than the CA folder"
    assert host.service("airflow-triggerer").is_running
    with host.sudo():
        assert host.check_output(f"""{PSQL} "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'airflow'" """) == "airflow"
    # as Airflow connects: over the network, with the password of the vault
    login = host.run(
        "PGPASSWORD=%s psql -XAtq -h %s -U airflow -d airflow -c 'SELECT current_user'",
        vault()["vault_postgresql_airflow_password"],
        address(host),
    )
    assert login.rc == 0 and login.stdout.strip() == "airflow", login.stderr

    again = run_playbook("playbooks/site.yml", {})
    assert_unchanged(again)
    # the login roles and databases the server holds as wanted are not touched again
    for task in ("postgresql : Create login roles", "postgresql : Create databases"):
        assert set(task_outcomes(again, task)) == {"skipping"}, task
