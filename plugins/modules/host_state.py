#!/usr/bin/python
# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the host_state action (plugins/action/host_state.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: host_state
short_description: One read-only command for the packages, units and other state a role manages
description:
  - Prints C(pkg NAME installed) for each of O(packages) that dpkg has installed, and C(unit NAME ACTIVE ENABLED) for
    each of O(units) and each service or timer that matches O(patterns) (C(ENABLED) is C(no) for a unit systemd does not
    know), C(stale UNIT) for each unit of O(restart_files) that runs older than one of its files, then whatever O(script)
    prints.
  - One shell command on the host (no Python needed there), also in check mode; changes nothing.
  - A role compares the lines with what it wants and skips the tasks whose target already matches.
version_added: 0.2.0
author: the airflow_ops.airflow_vm authors
options:
  packages:
    description: Debian package names.
    type: list
    elements: str
    default: []
  units:
    description: systemd unit names.
    type: list
    elements: str
    default: []
  patterns:
    description:
      - systemctl patterns (C(airflow-*), C(postgresql@*.service)); each service or timer that matches is read like one of
        O(units), once, in bytewise order after them. It matches a unit that is loaded (a template's running instance
        counts) or whose unit file is enabled.
      - The read fails if systemctl cannot list them.
    type: list
    elements: str
    default: []
  restart_files:
    description:
      - Unit name -> the absolute paths of the files it reads only when it starts. Prints C(stale UNIT) when the unit is
        active and one of these files was modified after the unit last became active (systemd's ActiveEnterTimestamp,
        in microseconds). Then a run wrote the file and stopped before it restarted the unit, and the next run still
        restarts it. A file that does not exist, or whose mtime lies in the future (the clock was set back), is
        skipped.
      - Unit names and paths must not hold blanks, quotes, shell signs, V(,) or V(=).
    type: dict
    default: {}
  calendar:
    description:
      - A systemd calendar expression (systemd.time(7)) to check with C(systemd-analyze calendar); empty checks none.
      - Prints C(calendar ok), or C(calendar bad:) followed by what systemd-analyze said.
    type: str
    default: ""
  script:
    description: More read-only shell, run after the packages and units with O(args) as C($1), C($2), ...
    type: str
    default: ""
  args:
    description: The arguments of O(script).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It runs in check mode as well (it only reads).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
"""

EXAMPLES = r"""
- name: Read the state of what this role manages
  airflow_ops.airflow_vm.host_state:
    packages: [redis-server, redis-tools]
    units: [redis-server]
  register: redis_state
"""

RETURN = r"""
stdout_lines:
  description: The lines read.
  returned: always
  type: list
  elements: str
missing_packages:
  description:
    - The names of O(packages) that dpkg has not installed (absent, or removed with their configuration kept), in the
      order given; the role's install task runs when it is not empty.
  returned: always
  type: list
  elements: str
stale_units:
  description:
    - The units of O(restart_files) that run older than one of their files (the C(stale UNIT) lines), in the order
      given; the role restarts them.
  returned: always
  type: list
  elements: str
dry_run_missing:
  description:
    - In a dry run (check mode), the units read that systemd does not know (C(ENABLED) C(no)); empty in a real run.
    - A dry run installs nothing, so a task that would start or enable a unit of a new package skips the units listed here;
      in a real run a missing unit stays an error.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec={"packages": {"type": "list", "elements": "str", "default": []},
                                          "units": {"type": "list", "elements": "str", "default": []},
                                          "patterns": {"type": "list", "elements": "str", "default": []},
                                          "restart_files": {"type": "dict", "default": {}},
                                          "calendar": {"type": "str", "default": ""},
                                          "script": {"type": "str", "default": ""},
                                          "args": {"type": "list", "elements": "str", "default": []}})
    module.fail_json(msg="host_state runs as an action plugin of airflow_ops.airflow_vm on the controller")


if __name__ == "__main__":
    main()
