"""airflow_ops.airflow_vm.host_state, run by ansible-playbook on this machine
(connection local): dpkg's and systemd's answers for real package and unit
names, systemd-analyze's answer for a calendar expression, the role's own
script with its arguments, in check mode as well."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import ansible_playbook, link_collection

READ = textwrap.dedent(
    """
    - hosts: localhost
      gather_facts: false
      tasks:
        - name: Read
          airflow_ops.airflow_vm.host_state:
            packages: "{{ packages }}"
            units: [no-such-unit-of-this-test.service]
            patterns: "{{ patterns | default([]) }}"
            restart_files: "{{ restart_files | default({}) }}"
            calendar: "{{ calendar | default('') }}"
            script: 'echo "arg $1 / $2"'
            args: [first, "two words"]
          register: state
        - name: Keep the lines for the test
          ansible.builtin.copy:
            content: "{{ state | to_json }}"
            dest: "{{ result_file }}"
            mode: "0600"
          check_mode: false
    """
)


def test_reads_packages_units_and_the_script_also_in_check_mode(tmp_path):
    link_collection(tmp_path)
    playbook = tmp_path / "read.yml"
    playbook.write_text(READ)
    kept = tmp_path / "state.json"
    for options in ((), ("--check",)):
        result = ansible_playbook(tmp_path, playbook, {"packages": ["dpkg", "no-such-package-of-this-test"],
                                                       "result_file": str(kept)}, *options)
        assert result.returncode == 0, result.stdout[-3000:]
        state = json.loads(kept.read_text())
        assert not state["changed"]
        lines = state["stdout_lines"]
        assert lines[0] == "pkg dpkg installed", lines
        assert not [line for line in lines if "no-such-package" in line], lines
        unit = [line for line in lines if line.startswith("unit no-such-unit-of-this-test.service ")]
        assert len(unit) == 1 and unit[0].endswith(" no"), lines  # unknown to systemd (or no systemd here)
        assert lines[-1] == "arg first / two words", lines
        assert not [line for line in lines if line.startswith("calendar")], lines  # no expression, no check
        assert state["missing_packages"] == ["no-such-package-of-this-test"], state
        assert state["stale_units"] == [], state  # no restart_files, none read
        # what a dry run's start tasks skip; a real run skips nothing
        assert state["dry_run_missing"] == (["no-such-unit-of-this-test.service"] if options else []), state


def test_checks_a_calendar_expression(tmp_path):
    link_collection(tmp_path)
    playbook = tmp_path / "read.yml"
    playbook.write_text(READ)
    kept = tmp_path / "state.json"
    said = {}
    for calendar in ("*-*-* 03:30:00", "every other tuesday"):
        result = ansible_playbook(tmp_path, playbook, {"packages": [], "calendar": calendar, "result_file": str(kept)})
        assert result.returncode == 0, result.stdout[-3000:]
        said[calendar] = [line for line in json.loads(kept.read_text())["stdout_lines"] if line.startswith("calendar")]
    assert said["*-*-* 03:30:00"] == ["calendar ok"], said
    bad = said["every other tuesday"]
    assert len(bad) == 1 and bad[0].startswith("calendar bad: ") and "every other tuesday" in bad[0], said


def test_refuses_names_that_are_not_plain(tmp_path):
    link_collection(tmp_path)
    playbook = tmp_path / "read.yml"
    playbook.write_text(READ)
    for key, bad in (("packages", "dpkg; rm -rf /"), ("patterns", "--all")):  # no shell, no option of systemctl
        result = ansible_playbook(tmp_path, playbook, {"packages": [], key: [bad], "result_file": str(tmp_path / "x")})
        assert result.returncode != 0
        assert f"{key}: must be a list of plain names" in result.stdout, result.stdout[-3000:]


def test_refuses_restart_files_that_are_not_plain_absolute_paths(tmp_path):
    link_collection(tmp_path)
    playbook = tmp_path / "read.yml"
    playbook.write_text(READ)
    for bad in ({"redis-server": ["etc/redis/redis.conf"]}, {"redis-server": ["/etc/a,b.conf"]},
                {"redis-server": "/etc/redis/redis.conf"}, {"x=y": ["/etc/x"]}, {"redis-server": ["/etc/$(id)"]}):
        result = ansible_playbook(tmp_path, playbook, {"packages": [], "restart_files": bad, "result_file": str(tmp_path / "x")})
        assert result.returncode != 0, bad
        assert "restart_files: must map unit names to lists of absolute paths" in result.stdout, result.stdout[-3000:]
    assert not (tmp_path / "x").exists()


def test_a_pattern_that_systemctl_cannot_list_fails_the_read(tmp_path):
    """Whatever stops the units of a pattern (make down) must not take "none
    listed" for "none there": here systemctl has no systemd to ask."""
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd runs here: systemctl can list units")
    link_collection(tmp_path)
    playbook = tmp_path / "read.yml"
    playbook.write_text(READ)
    result = ansible_playbook(tmp_path, playbook, {"packages": [], "patterns": ["cron*"], "result_file": str(tmp_path / "x")})
    assert result.returncode != 0
    assert "reading the host's state failed (rc 1)" in result.stdout, result.stdout[-3000:]
    assert not (tmp_path / "x").exists()
