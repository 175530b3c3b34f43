#!/usr/bin/python
# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the check_input action (plugins/action/check_input.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: check_input
short_description: A role's preflight, every failed check reported at once, each naming its variable
description:
  - Checks the host's platform (gathered facts C(distribution) and C(distribution_release)) against the platforms
    that the calling role's C(meta/main.yml) lists in C(galaxy_info.platforms), or against O(platforms).
  - "Then each of O(checks). When any fails, the task fails with one line per failure, C(VARIABLE: MESSAGE)."
  - >-
    Then the line breaks. Each variable that a check names (every name in its O(checks[].var) not after a dot) and each
    option of type str, path, raw, list or dict of the calling role's C(meta/argument_specs.yml) (entry point C(main))
    must hold no line break (in any text of it, keys and values of lists and dicts within) unless a check naming it
    sets O(checks[].multiline). A value with one fails as C(WHERE: must be on one line ...), WHERE the variable, key or
    index; the value itself is never shown. Such a value would split the line of the file it is written into, and a
    vault value made with C(echo ... | ansible-vault encrypt_string) ends in one.
  - >-
    Then the names. Each variable whose name starts with the calling role's name and an underscore (C(airflow_) for
    the C(airflow) role) must be an option of an entry point of the role's C(meta/argument_specs.yml); any other fails
    as C(NAME: the ROLE role has no such variable ...), with the nearest option's name when one is close. A misspelt
    variable would otherwise change nothing, silently. No check of names for a role without C(meta/argument_specs.yml).
  - Runs on the controller; changes nothing.
version_added: 0.2.0
author: the airflow_ops.airflow_vm authors
options:
  checks:
    description: The checks of the role's input.
    type: list
    elements: dict
    default: []
    suboptions:
      var:
        description: The variable (or variables) the check is about, as the user sets them.
        type: str
        required: true
      ok:
        description: Whether the input passes (a boolean, usually a Jinja expression).
        type: bool
        required: true
      msg:
        description: What is allowed, or how to fix it.
        type: str
        required: true
      multiline:
        description: The variables this check names may hold line breaks (e.g. PEM text).
        type: bool
        default: false
  platforms:
    description:
      - The supported platforms, as C(galaxy_info.platforms) lists them (C(name) and C(versions), Debian's code names).
      - Default is the calling role's C(meta/main.yml); outside a role, no platform check.
    type: list
    elements: dict
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
"""

EXAMPLES = r"""
- name: Check the Redis input
  airflow_ops.airflow_vm.check_input:
    checks:
      - var: redis_port
        ok: "{{ 1 <= (redis_port | int) <= 65535 }}"
        msg: must be a port number, 1-65535.
"""

RETURN = r"""
problems:
  description: "One line per failed check, C(VARIABLE: MESSAGE) (the platform first, as C(platform))."
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec={"checks": {"type": "list", "elements": "dict", "default": []},
                                          "platforms": {"type": "list", "elements": "dict"}})
    module.fail_json(msg="check_input runs as an action plugin of airflow_ops.airflow_vm on the controller")


if __name__ == "__main__":
    main()
