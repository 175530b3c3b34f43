#!/usr/bin/python
# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the managed_files action (plugins/action/managed_files.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: managed_files
short_description: Files and directories stated once as data, written only where the host differs
description:
  - Each item states a path, its owner, group and mode, and for a file its content source (a template of the role, a
    file of the role, or literal content).
  - One remote read gets the mode, owner, group and SHA-1 of every listed path; only the paths that differ are written,
    through Ansible's copy action (atomic write, check mode, C(--diff)) or, for directories, the file module.
  - Templates are rendered on the controller as the P(ansible.builtin.template#lookup) lookup renders them.
  - Runs as an action plugin; this file only documents it.
version_added: 0.1.0
author: the airflow_ops.airflow_vm authors
options:
  files:
    description: The managed paths, in the order they are written (a directory before the files in it).
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Absolute path on the host.
        type: path
        required: true
      state:
        description:
          - C(file), C(directory), or C(absent) (removed if it exists; its owner, group, mode and content source, if
            given, are ignored, so a file is switched off by its state alone).
        type: str
        choices: [file, directory, absent]
        default: file
      owner:
        description: User name that owns the path (required unless O(files[].state=absent)).
        type: str
      group:
        description: Group name of the path (required unless O(files[].state=absent)).
        type: str
      mode:
        description: Octal mode as a string, such as C("0640") (required unless O(files[].state=absent)).
        type: str
      template:
        description: A template of the role (its C(templates/) folder) that gives the content.
        type: str
      src:
        description: A file of the role (its C(files/) folder) that gives the content.
        type: str
      content:
        description: The content itself.
        type: str
      secret:
        description: The content holds secrets; its diff is never returned (use C(no_log) on the task as well).
        type: bool
        default: false
      vars:
        description: Extra variables for this item's template (as the template lookup's C(template_vars)).
        type: dict
      id:
        description: Any value that names the item to the caller (such as the service a change restarts); returned in RV(results).
        type: raw
      restarts:
        description:
          - Names of what must restart when this item changes. Before the first write, an empty file per name is created in
            O(restart_intent_dir) (unless it exists), so that the intent survives a run that stops after the write; the caller
            removes each file once that restart is done.
        type: list
        elements: str
  restart_intent_dir:
    description: The folder of the restart intents (see O(files[].restarts)); it must exist.
    type: path
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
"""

EXAMPLES = r"""
- name: Write the configuration
  airflow_ops.airflow_vm.managed_files:
    files:
      - {dest: /etc/redis, state: directory, owner: redis, group: redis, mode: "0750"}
      - {dest: /etc/redis/redis.conf, template: redis.conf.j2, owner: redis, group: redis, mode: "0640", secret: true}
  register: redis_files
  notify: redis restart
"""

RETURN = r"""
changed_paths:
  description: The paths that were (or, in check mode, would be) written or re-moded.
  returned: always
  type: list
  elements: str
restarts:
  description: The names recorded in O(restart_intent_dir) (in check mode, that would be).
  returned: always
  type: list
  elements: str
results:
  description: One entry per item, with C(dest), C(changed), its C(id) if it has one and, when it differed, C(was) (missing, different, or present for a removed path).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec={"files": {"type": "list", "elements": "dict", "required": True}})
    module.fail_json(msg="managed_files runs as an action plugin of airflow_ops.airflow_vm on the controller")


if __name__ == "__main__":
    main()
