"""What runs on the controller runs as the user who runs the play, never
through sudo, even where the inventory sets `ansible_become: true` for
every host (inventories/production does). The implicit localhost inherits
the group `all`'s variables, and an inventory variable outranks the
`become:` keyword, also on a task delegated to localhost. So each play on
localhost and each task delegated to it must set the variable
`ansible_become: false` (README, "The controller").

The first test shows that rule with the ansible-core under test
(ANSIBLE_PLAYBOOK: the pinned and the lowest), on this machine. The second
finds every play and task of playbooks/ and roles/ that runs on the
controller and checks that it follows the rule. (The molecule test beds
give localhost a become that always fails, so every controller step they
run proves it too.)
"""

from __future__ import annotations

import sys

import yaml

from playrun import PYTHON, ROOT, run_play

CONTROLLER = {"localhost", "127.0.0.1"}
TRAP = "/controller-tasks-must-not-become"


def test_only_the_variable_keeps_the_controller_from_becoming(tmp_path):
    # production's `all: vars: ansible_become: true`, with a become that cannot
    # succeed (to another user, so Ansible does not skip it as a no-op)
    run = run_play(tmp_path, {"all": {
        "vars": {"ansible_become": True, "ansible_become_user": "nobody", "ansible_become_exe": TRAP,
                 "ansible_python_interpreter": PYTHON},
        "hosts": {"vm": {"ansible_connection": "local", "ansible_become": False}}}}, [
        {"name": "Delegated", "hosts": "vm", "gather_facts": False, "tasks": [
            {"name": "keyword", "ansible.builtin.command": "true", "delegate_to": "localhost", "become": False,
             "ignore_errors": True, "register": "keyword"},
            {"name": "variable", "ansible.builtin.command": "true", "delegate_to": "localhost",
             "vars": {"ansible_become": False}},
            {"name": "keyword failed", "ansible.builtin.assert": {"that": f"keyword is failed and '{TRAP}' in (keyword | to_json)"}},
        ]},
        {"name": "On localhost", "hosts": "localhost", "gather_facts": False, "vars": {"ansible_become": False},
         "tasks": [{"name": "play variable", "ansible.builtin.command": "true"}]},
    ])
    assert run.returncode == 0, run.stdout + run.stderr
    assert "vm                         : ok=3    changed=1" in run.stdout, run.stdout
    assert "localhost                  : ok=1    changed=1" in run.stdout, run.stdout


class _Loader(yaml.SafeLoader):
    """YAML as Ansible writes it: !vault and !unsafe values are plain strings here."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None)

_BLOCKS = ("block", "rescue", "always")


def _unbecome(entry: dict) -> bool:
    return (entry.get("vars") or {}).get("ansible_become") is False


def _tasks(tasks, where: str, controller: bool, guarded: bool):
    """(where, name) of each task that runs on the controller unguarded."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        here = controller or task.get("delegate_to") in CONTROLLER
        safe = guarded or _unbecome(task)
        if any(key in task for key in _BLOCKS):
            for key in _BLOCKS:
                yield from _tasks(task.get(key), where, here, safe)
        elif here and not safe:
            yield where, task.get("name", "?")


def _controller_steps_without_the_variable():
    files = sorted([*ROOT.glob("playbooks/**/*.yml"), *ROOT.glob("roles/*/tasks/*.yml"), *ROOT.glob("roles/*/handlers/*.yml")])
    assert files
    for path in files:
        where = str(path.relative_to(ROOT))
        for entry in yaml.load(path.read_text(), Loader=_Loader) or []:  # noqa: S506 - a SafeLoader subclass
            if not isinstance(entry, dict) or "import_playbook" in entry:
                continue
            if "hosts" in entry:  # a play
                controller = entry["hosts"] in CONTROLLER or entry.get("connection") == "local"
                for section in ("pre_tasks", "roles", "tasks", "post_tasks", "handlers"):
                    if section == "roles":
                        if controller and entry.get("roles") and not _unbecome(entry):
                            yield where, f"play {entry.get('name', '?')}: roles"
                        continue
                    yield from _tasks(entry.get(section), where, controller, _unbecome(entry))
            else:  # a task file
                yield from _tasks([entry], where, False, False)


def test_every_controller_step_sets_the_variable():
    missing = list(_controller_steps_without_the_variable())
    assert not missing, (
        "these run on the controller (hosts: localhost, connection: local or delegate_to: localhost) without "
        "`vars: {ansible_become: false}` on the task, a block around it or the play, so an inventory's "
        f"ansible_become: true makes them sudo on the controller: {missing}")


def test_the_scan_finds_an_unguarded_delegation(tmp_path, monkeypatch):
    # the check above can fail: a delegated task without the variable is found
    role = tmp_path / "roles/x/tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(yaml.safe_dump([
        {"name": "guarded", "block": [{"name": "in block", "ansible.builtin.command": "true"}],
         "delegate_to": "localhost", "vars": {"ansible_become": False}},
        {"name": "keyword only", "ansible.builtin.command": "true", "delegate_to": "localhost", "become": False},
    ]))
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert list(_controller_steps_without_the_variable()) == [("roles/x/tasks/main.yml", "keyword only")]
