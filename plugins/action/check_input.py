# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of airflow_ops.airflow_vm.check_input (docs: plugins/modules/check_input.py).

A role's preflight: the host's platform against the platforms the calling
role's meta/main.yml lists, then each check of the role's input. Every
failed check is reported at once, each naming its variable and the fix.
Runs on the controller only: it changes nothing and reads nothing from the
host beyond the facts already gathered.
"""

from __future__ import annotations

import os

import yaml
from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


def platform_problem(facts: dict, platforms: list) -> str | None:
    """None when the host's distribution and release are among `platforms`
    (meta/main.yml's galaxy_info.platforms), else what is wrong."""
    name, release = facts.get("distribution"), facts.get("distribution_release")
    if name is None or release is None:
        return "the facts distribution and distribution_release are needed (gather facts before this check)"
    supported = {p["name"]: [str(v) for v in p.get("versions", [])] for p in platforms}
    if release in supported.get(name, []):
        return None
    listed = "; ".join(f"{p} {', '.join(versions)}" for p, versions in supported.items())
    return f"unsupported platform: {name} {facts.get('distribution_version', '')} ({release}); supported: {listed}."


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("checks", "platforms"))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        checks = self._task.args.get("checks", [])
        if not isinstance(checks, list):
            raise AnsibleActionFail("checks: must be a list of {var, ok, msg}")
        problems = []
        platforms = self._task.args.get("platforms", self._role_platforms())
        if platforms is not None:
            said = platform_problem(task_vars.get("ansible_facts", {}), platforms)
            if said:
                problems.append(f"platform: {said}")
        for index, check in enumerate(checks):
            if not isinstance(check, dict) or set(check) != {"var", "ok", "msg"}:
                raise AnsibleActionFail(f"checks[{index}]: must be a dict of var, ok and msg, not {check!r}")
            try:
                ok = boolean(check["ok"], strict=True)
            except TypeError as error:
                raise AnsibleActionFail(f"checks[{index}] ({check['var']}): ok must be a boolean, not {check['ok']!r}") from error
            if not ok:
                problems.append(f"{check['var']}: {check['msg']}")
        result.update(changed=False, problems=problems)
        if problems:
            result.update(failed=True, msg="\n".join(problems))
        else:
            result["msg"] = f"{len(checks) + (platforms is not None)} checks passed"
        return result

    def _role_platforms(self):
        """galaxy_info.platforms of the role this task belongs to (None outside a role)."""
        role = getattr(self._task, "_role", None)
        if role is None:
            return None
        with open(os.path.join(role._role_path, "meta", "main.yml"), encoding="utf-8") as handle:
            return yaml.safe_load(handle)["galaxy_info"]["platforms"]
