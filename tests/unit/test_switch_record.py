"""The release switch keeps the record of a migration a stopped run began.

The upgrade window writes switch-migrating.json (the switch record it will
make, migrated, with its backup) before `airflow db migrate`. A run that
stops after that and before its switch leaves it; the next run finds the
migrations applied and makes a plain switch to the same release, which must
take that record as its own, or `make rollback` would not restore the
backup. The airflow role's `switch` entry point runs here on this machine
(connection local) against a scratch install root, with the pinned and the
lowest ansible-core; the record the window writes is the same template
(`_airflow_switch_info`), rendered by the window's own task file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from playrun import PYTHON, run_play
OLD, NEW = "3.0.2-py3.11-aaaaaaaaaaaa", "3.3.2-py3.11-bbbbbbbbbbbb"


def _run(tmp_path: Path, tasks: list) -> subprocess.CompletedProcess:
    """The tasks against a scratch install root running OLD, with NEW built
    beside it (the wanted release)."""
    root = tmp_path / "opt"
    for release in (OLD, NEW):
        (root / "releases" / release).mkdir(parents=True)
        (root / "releases" / release / ".complete").touch()
    (root / "current").symlink_to(f"releases/{OLD}")
    return run_play(tmp_path, {"all": {"hosts": {"vm": {"ansible_connection": "local", "ansible_python_interpreter": PYTHON}}}},
                    [{"name": "Switch", "hosts": "vm", "gather_facts": False, "tasks": tasks}],
                    {"airflow_install_root": str(root), "_airflow_release_id": NEW, "_airflow_host_components": [],
                     "airflow_releases_keep": 2})


def _begun(running: str, backup: str, state: tuple[str, ...] = ()) -> list[dict]:
    """The window's record (tasks/switch_begun.yml) with the host running
    `running`; the backup's name arrives as a fact, as playbooks/release.yml
    hands it to the hosts."""
    return [{"name": "the backup", "ansible.builtin.set_fact": {"__airflow_backup_file": backup}},
            {"name": "the window's record", "ansible.builtin.include_role": {"name": "airflow", "tasks_from": "switch_begun", "rolespec_validate": False},
             "vars": {"_airflow_state": [f"link current {running}", *state]}}]


def _switch(tmp_path: Path, begun_from: str | None) -> subprocess.CompletedProcess:
    """When begun_from is given, the window's record of a migration from it
    to NEW; then the role's plain switch to NEW."""
    tasks = [] if begun_from is None else _begun(begun_from, "/var/backups/airflow/x.dump")
    # the switch comes in a later run: it has no backup of its own
    tasks.append({"name": "a later run", "ansible.builtin.set_fact": {"__airflow_backup_file": ""}})
    tasks.append({"name": "plain switch", "ansible.builtin.include_role": {"name": "airflow", "tasks_from": "switch", "rolespec_validate": False},
                  "vars": {"_airflow_state": [f"link current {OLD}"]}})
    return _run(tmp_path, tasks)


def test_a_plain_switch_after_a_stopped_migration_keeps_its_backup(tmp_path):
    run = _switch(tmp_path, begun_from=OLD)
    assert run.returncode == 0, run.stdout + run.stderr
    root = tmp_path / "opt"
    assert os.readlink(root / "current") == f"releases/{NEW}"
    assert os.readlink(root / "previous") == f"releases/{OLD}"
    record = json.loads((root / "switch.json").read_text())
    assert (record["from"], record["to"], record["migrated"], record["backup"]) == (OLD, NEW, True, "/var/backups/airflow/x.dump")
    assert not (root / "switch-migrating.json").exists(), "the window's record stays after the switch took it"


def test_a_record_of_another_switch_is_not_taken(tmp_path):
    run = _switch(tmp_path, begun_from="2.11.0-py3.11-cccccccccccc")
    assert run.returncode == 0, run.stdout + run.stderr
    record = json.loads((tmp_path / "opt" / "switch.json").read_text())
    assert (record["from"], record["to"], record["migrated"], record["backup"]) == (OLD, NEW, False, "")
    assert not (tmp_path / "opt" / "switch-migrating.json").exists()


def test_a_plain_switch_without_a_begun_migration_records_none(tmp_path):
    run = _switch(tmp_path, begun_from=None)
    assert run.returncode == 0, run.stdout + run.stderr
    record = json.loads((tmp_path / "opt" / "switch.json").read_text())
    assert (record["from"], record["to"], record["migrated"]) == (OLD, NEW, False)


def test_a_second_attempt_keeps_the_backup_of_the_first(tmp_path):
    """A run stopped during the migration; the next one takes another backup
    (of a database that may be half migrated) and enters the window again:
    its record keeps the first backup, the one make rollback must restore."""
    run = _run(tmp_path, _begun(OLD, "/var/backups/airflow/first.dump")
               + _begun(OLD, "/var/backups/airflow/second.dump", ("migration begun",)))
    assert run.returncode == 0, run.stdout + run.stderr
    record = json.loads((tmp_path / "opt" / "switch-migrating.json").read_text())
    assert (record["from"], record["to"], record["migrated"], record["backup"]) == (OLD, NEW, True, "/var/backups/airflow/first.dump")
