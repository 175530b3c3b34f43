"""What a run does with releases, decided for the whole cluster.

The airflow role's preflight notes on each host its OS release, the release
it runs and the one it is to run; `_airflow_changing` (vars/main.yml) reads
them for the play's Airflow hosts, and the `upgrade_plan` entry point
(playbooks/release.yml's first play) decides from it whether the run
upgrades, from which release, and which hosts change release. Here that
entry point runs on four hosts of this machine (connection local: three
Airflow hosts, one other) with the pinned and the lowest ansible-core; each
Airflow host writes what it decided to a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playrun import PYTHON, run_play
OLD, NEW = "3.0.2-py3.11-aaaaaaaaaaaa", "3.3.2-py3.11-bbbbbbbbbbbb"
OLD13, NEW13 = "3.0.2-py3.13-cccccccccccc", "3.3.2-py3.13-dddddddddddd"


def _plan(tmp_path: Path, hosts: dict[str, tuple[str, str, str]], pending: bool = True) -> dict[str, dict]:
    """hosts: Airflow host -> (OS release, running release, wanted release),
    as preflight notes them; pending: whether the new release's check finds
    migrations to apply. Returns each Airflow host's decision."""
    inventory = {"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": PYTHON},
        "children": {"airflow": {"hosts": dict.fromkeys(hosts, {})}, "postgresql": {"hosts": {"db": {}}}}}}
    noted = {"__airflow_os": "{{ facts[0] }}", "__airflow_running": "{{ facts[1] }}", "__airflow_target": "{{ facts[2] }}"}
    decided = {"upgrade": "{{ __airflow_upgrade }}", "from": "{{ __airflow_from }}", "migrating": "{{ __airflow_migrating }}",
               "changing": "{{ 'airflow_release_changing' in group_names }}"}
    plays = [
        {"name": "What preflight notes", "hosts": "all", "gather_facts": False, "tasks": [
            {"name": "note", "ansible.builtin.set_fact": noted, "when": "inventory_hostname in noted_facts",
             "vars": {"facts": "{{ noted_facts[inventory_hostname] }}"}}]},
        # on every host, as preflight's play (the other host has no facts: _airflow_changing reads Airflow hosts only)
        {"name": "Decide", "hosts": "all", "gather_facts": False, "tasks": [
            {"name": "plan", "ansible.builtin.include_role": {"name": "airflow", "tasks_from": "upgrade_plan", "rolespec_validate": False},
             "when": "'airflow' in group_names"},
            {"name": "write", "ansible.builtin.copy": {"content": json.dumps(decided), "dest": f"{tmp_path}/{{{{ inventory_hostname }}}}.json",
                                                       "mode": "0644"}, "when": "'airflow' in group_names"}]},
    ]
    run = run_play(tmp_path, inventory, plays, {
        "noted_facts": {host: list(facts) for host, facts in hosts.items()},
        "airflow_install_root": str(tmp_path / "opt"), "_airflow_state": [],
        # the new release's `airflow db check-migrations`: fails (pending, or no answer: the safe side) or passes
        "_airflow_release_cli": ["/bin/false" if pending else "/bin/true"], "_airflow_release_id": "(in a task name)"})
    assert run.returncode == 0, run.stdout + run.stderr
    return {host: json.loads((tmp_path / f"{host}.json").read_text()) for host in hosts}


def _as_bool(decision: dict) -> dict:
    return {key: value if key == "from" else str(value).lower() == "true" for key, value in decision.items()}


@pytest.mark.parametrize(("hosts", "expected"), [
    pytest.param(
        {"a": ("debian-12-x86_64", OLD, NEW), "b": ("debian-12-x86_64", OLD, NEW), "c": ("debian-13-x86_64", "", NEW13)},
        {"upgrade": True, "from": OLD, "migrating": True, "changing": ["a", "b", "c"]},
        id="an upgrade, with a new host's first install"),
    pytest.param(
        {"a": ("debian-12-x86_64", OLD, NEW), "b": ("debian-12-x86_64", OLD, NEW), "c": ("debian-13-x86_64", OLD13, NEW13)},
        {"upgrade": True, "from": OLD, "migrating": True, "changing": ["a", "b", "c"]},
        id="an upgrade of a cluster of two Debian releases"),
    pytest.param(
        {"a": ("debian-12-x86_64", NEW, NEW), "b": ("debian-12-x86_64", NEW, NEW), "c": ("debian-12-x86_64", NEW, NEW)},
        {"upgrade": False, "from": "", "migrating": False, "changing": []},
        id="nothing to change"),
    pytest.param(
        {"a": ("debian-12-x86_64", "", NEW), "b": ("debian-12-x86_64", "", NEW), "c": ("debian-13-x86_64", "", NEW13)},
        {"upgrade": False, "from": "", "migrating": False, "changing": ["a", "b", "c"]},
        id="a first install"),
    pytest.param(
        {"a": ("debian-12-x86_64", NEW, NEW), "b": ("debian-12-x86_64", NEW, NEW), "c": ("debian-12-x86_64", "", NEW)},
        {"upgrade": False, "from": "", "migrating": False, "changing": ["c"]},
        id="a host added to a running cluster"),
    pytest.param(
        {"a": ("debian-12-x86_64", NEW, NEW), "b": ("debian-12-x86_64", OLD, NEW), "c": ("debian-12-x86_64", NEW, NEW)},
        {"upgrade": True, "from": OLD, "migrating": True, "changing": ["b"]},
        id="a switch that stopped half way"),
])
def test_the_cluster_decides_one_release_change(tmp_path, hosts, expected):
    decisions = {host: _as_bool(decision) for host, decision in _plan(tmp_path, hosts).items()}
    for host, decision in decisions.items():
        assert {key: decision[key] for key in ("upgrade", "from", "migrating")} == \
            {key: expected[key] for key in ("upgrade", "from", "migrating")}, host
    assert [host for host, decision in decisions.items() if decision["changing"]] == expected["changing"]


def test_a_release_without_pending_migrations_switches_without_a_window(tmp_path):
    """A patch release (or another lock): the check of the new release finds
    no migration, so the switch is a rolling restart, not the window."""
    hosts = {"a": ("debian-12-x86_64", OLD, NEW), "b": ("debian-12-x86_64", OLD, NEW), "c": ("debian-13-x86_64", OLD13, NEW13)}
    decisions = {host: _as_bool(decision) for host, decision in _plan(tmp_path, hosts, pending=False).items()}
    assert decisions == dict.fromkeys(hosts, {"upgrade": True, "from": OLD, "migrating": False, "changing": True})
