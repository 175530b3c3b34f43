# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of airflow_ops.airflow_vm.check_input (docs: plugins/modules/check_input.py).

A role's preflight: the host's platform against the platforms the calling
role's meta/main.yml lists, then each check of the role's input. Every
failed check is reported at once, each naming its variable and the fix.
Runs on the controller only: it changes nothing and reads nothing from the
host beyond the facts already gathered.

Every variable a check names, and every text, list or dict option of the
calling role's meta/argument_specs.yml, must be on one line (each text in it,
keys and values of what it holds) unless a check marks it `multiline`: a
value written into a line of a file (airflow.cfg, a unit, a server's config)
that holds a line break splits that line, and a vault value made with
`echo ... | ansible-vault encrypt_string` ends in one. One rule here, so no
check has to repeat it (nor can forget it).

And every variable named with the calling role's prefix (airflow_ for the
airflow role) must be an option of one of its entry points: a misspelt
name (airflow_worker_concurency) would otherwise change nothing, silently.
"""

from __future__ import annotations

import difflib
import os
import re

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


# the variables a check's `var` names: each name not after a dot
# (airflow_config.core.executor names airflow_config; "a / b" names both)
VARIABLE_NAME = re.compile(r"(?<![.\w])[A-Za-z_]\w*")


# argument_specs types whose values may hold text
TEXT_TYPES = frozenset(("str", "path", "raw", "list", "dict"))


def line_break_at(value, path: str) -> str | None:
    """The path (name, .key or [index]) of the first text in `value` that
    holds a line break, None when there is none. Never the text itself (a
    secret)."""
    if isinstance(value, dict):
        if any(line_break_at(key, path) for key in value):
            return f"{path} (a key)"
        parts = [(f"{path}.{key}", item) for key, item in value.items()]
    elif isinstance(value, (list, tuple)):
        parts = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    elif value is None or isinstance(value, (bool, int, float)):
        return None
    else:
        # str, or a vault value left encrypted by the templar (ansible-core 2.17's is no str)
        text = str(value)
        return path if "\n" in text or "\r" in text else None
    return next(filter(None, (line_break_at(item, at) for at, item in parts)), None)


def unknown_names(names, role: str, options, foreign) -> list:
    """One problem per name in `names` with the prefix of `role` that is not
    in `options` (every option of the role's entry points) nor in `foreign`
    (<role>_foreign_variables: names of something else's), with the closest
    option when one is near."""
    problems = []
    for name in sorted(name for name in names if name.startswith(f"{role}_") and name not in options and name not in foreign):
        near = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.8)
        hint = f" (did you mean {near[0]}?)" if near else ""
        problems.append(
            f"{name}: the {role} role has no such variable, so it would change nothing{hint}: correct the name,"
            f" or give a variable of your own a prefix other than {role}_ (one of another role on these hosts:"
            f" list it in {role}_foreign_variables)."
        )
    return problems


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
        read = []  # the checks with ok and multiline as booleans
        for index, check in enumerate(checks):
            if not isinstance(check, dict) or not {"var", "ok", "msg"} <= set(check) <= {"var", "ok", "msg", "multiline"}:
                raise AnsibleActionFail(f"checks[{index}]: must be a dict of var, ok and msg (and multiline), not {check!r}")
            if not isinstance(check["var"], str):
                raise AnsibleActionFail(f"checks[{index}]: var must be the variable's name, not {check['var']!r}")
            flags = {}
            for key in ("ok", "multiline"):
                try:
                    flags[key] = boolean(check.get(key, False), strict=True)
                except TypeError as error:
                    raise AnsibleActionFail(f"checks[{index}] ({check['var']}): {key} must be a boolean, not {check[key]!r}") from error
            read.append(check | flags)
            if not flags["ok"]:
                problems.append(f"{check['var']}: {check['msg']}")
        spec = self._role_spec()
        problems.extend(self._line_breaks(read, task_vars, spec.get("main", {}).get("options") or {}))
        if spec:
            # (the facts the roles set for themselves begin with __: __redis_listens)
            role = os.path.basename(self._task._role._role_path)
            listed = f"{role}_foreign_variables"
            foreign = self._templar.template(task_vars.get(listed, []))
            if isinstance(foreign, list) and all(isinstance(name, str) for name in foreign):
                options = {name for entry in spec.values() for name in entry.get("options") or {}}
                problems.extend(unknown_names(task_vars, role, options, set(foreign)))
            else:
                problems.append(f"{listed}: must be a list of variable names (strings), not {foreign!r}.")
        result.update(changed=False, problems=problems)
        if problems:
            result.update(failed=True, msg="\n".join(problems))
        else:
            result["msg"] = f"{len(checks) + (platforms is not None)} checks passed"
        return result

    def _line_breaks(self, checks: list, task_vars: dict, options: dict) -> list:
        """One problem per variable the checks name, or text option of the
        role's main entry point (str, path, raw, list, dict) that holds a
        line break, unless a check marks it multiline."""
        texts = [name for name, option in options.items() if option.get("type", "str") in TEXT_TYPES]
        multiline, names = set(), [name for name in texts if name in task_vars]
        for check in checks:
            found = [name for name in VARIABLE_NAME.findall(check["var"]) if name in task_vars]
            if check["multiline"]:
                multiline.update(found)
            names.extend(name for name in found if name not in names)
        problems = []
        for name in names:
            if name in multiline:
                continue
            try:
                value = self._templar.template(task_vars[name])
            except Exception:  # pylint: disable=broad-exception-caught  # undefined: the check that reads it says so
                continue
            where = line_break_at(value, name)
            if where:
                problems.append(
                    f"{where}: must be on one line (a vault value made with 'echo ... | ansible-vault encrypt_string'"
                    " ends in a line break: 'printf %s ...' instead)."
                )
        return problems

    def _role_platforms(self):
        """galaxy_info.platforms of the role this task belongs to (None outside a role)."""
        path = self._role_meta("main.yml")
        if path is None:
            return None
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)["galaxy_info"]["platforms"]

    def _role_spec(self) -> dict:
        """The entry points of the calling role's meta/argument_specs.yml: none
        outside a role or without a spec."""
        path = self._role_meta("argument_specs.yml")
        if path is None or not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)["argument_specs"]

    def _role_meta(self, name: str) -> str | None:
        """The path of meta/<name> in the role this task belongs to (None outside a role)."""
        role = getattr(self._task, "_role", None)
        return None if role is None else os.path.join(role._role_path, "meta", name)
