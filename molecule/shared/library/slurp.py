#!/usr/bin/python
# The test beds' trap for a fetch that reads through memory (molecule's
# ANSIBLE_LIBRARY, and the tests' playbook runs, point here). Ansible's
# fetch falls back to `ansible.legacy.slurp` when it becomes (or cannot
# read the file as the login user): base64, the whole file in memory on the
# host and on the controller. The collection fetches root-only files through
# the airflow role's `fetch` entry point instead, and the default and
# cluster scenarios log in as a user with sudo, so a fetch that would slurp
# fails here. `ansible.builtin.slurp`, which the roles use on purpose for
# small files, is not shadowed by a library path.
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={"src": {"type": "path", "required": True, "aliases": ["path"]}},
                           supports_check_mode=True)
    module.fail_json(msg=f"fetch read {module.params['src']} through slurp (all of it in memory): fetch root-only "
                         "files with the airflow role's `fetch` entry point (molecule/shared/library/slurp.py)")


if __name__ == "__main__":
    main()
