# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of airflow_ops.airflow_vm.managed_files (docs: plugins/modules/managed_files.py).

The files and directories a role manages, each stated once as data (path,
owner, group, mode, content source). One remote read (mode, owner, group and
SHA-1 of every path) decides what differs; only that is sent to the
collection's managed_files module, which writes all of it in one more round
trip (atomic writes, owner and mode set before the rename, check mode,
--diff, become). Templates render on the controller exactly as the template
lookup renders them.
"""

from __future__ import annotations

import hashlib
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

SOURCES = ("template", "content", "src")
KEYS = {"dest", "state", "owner", "group", "mode", "secret", "vars", "id", "restarts", "restarts_by_option", *SOURCES}

# For each path: "F MODE OWNER GROUP SHA1 PATH" (a file), "D MODE OWNER GROUP - PATH"
# (a directory), nothing when it does not exist (an absent path is wanted as nothing).
READ = r"""for p; do
  if [ -d "$p" ]; then printf 'D %s - %s\n' "$(stat -c '%a %U %G' -- "$p")" "$p"
  elif [ -f "$p" ]; then printf 'F %s %s %s\n' "$(stat -c '%a %U %G' -- "$p")" "$(sha1sum < "$p" | cut -c1-40)" "$p"
  fi
done"""


def parse_state(stdout: str) -> dict[str, tuple[str, int, str, str, str]]:
    """path -> (kind, mode, owner, group, sha1 or '-') from READ's output."""
    state = {}
    for line in stdout.splitlines():
        parts = line.split(" ", 5)
        if len(parts) == 6 and parts[0] in ("F", "D"):
            kind, mode, owner, group, sha1, path = parts
            state[path] = (kind, int(mode, 8), owner, group, sha1)
    return state


def check_item(index: int, item) -> dict:
    """One item of `files`, validated and normalised; raises naming what is wrong."""
    where = f"files[{index}]"
    if not isinstance(item, dict):
        raise AnsibleActionFail(f"{where}: must be a dict with dest, owner, group, mode and a content source")
    unknown = set(item) - KEYS
    if unknown:
        raise AnsibleActionFail(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(KEYS)}")
    dest = item.get("dest")
    where = f"files[{index}] ({dest})"
    if not isinstance(dest, str) or not dest.startswith("/"):
        raise AnsibleActionFail(f"{where}: dest must be an absolute path")
    state = item.get("state", "file")
    if state not in ("file", "directory", "absent"):
        raise AnsibleActionFail(f"{where}: state must be file, directory or absent, not {state!r}")
    restarts = item.get("restarts", [])
    if not isinstance(restarts, list) or not all(isinstance(name, str) and name and "/" not in name for name in restarts):
        raise AnsibleActionFail(f"{where}: restarts must be a list of names (files of restart_intent_dir)")
    readers = item.get("restarts_by_option", {})
    if not isinstance(readers, dict) or not all(
            isinstance(key, str) and key == key.lower() and "." in key and isinstance(names, list)
            and all(isinstance(name, str) and name for name in names) for key, names in readers.items()):
        raise AnsibleActionFail(f"{where}: restarts_by_option must map 'section.option' (lower case) to a list of names")
    if not isinstance(item.get("vars", {}), dict):
        raise AnsibleActionFail(f"{where}: vars must be a dict (the template's extra variables)")
    if state == "absent":  # what it would hold does not matter: a file can be switched off by its state alone
        return dict(item, state=state, secret=False)
    sources = [key for key in SOURCES if key in item]
    if "vars" in item and sources != ["template"]:
        raise AnsibleActionFail(f"{where}: vars are for a template")
    for key in ("owner", "group"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise AnsibleActionFail(f"{where}: {key} must be a user or group name")
    mode = item.get("mode")
    if not isinstance(mode, str) or not mode.isdigit() or set(mode) - set("01234567") or not 3 <= len(mode) <= 4:
        raise AnsibleActionFail(f"{where}: mode must be an octal string such as '0640', not {mode!r}")
    if state == "directory" and sources:
        raise AnsibleActionFail(f"{where}: a directory takes no {sources[0]}")
    if state == "file" and len(sources) != 1:
        raise AnsibleActionFail(f"{where}: give exactly one of {', '.join(SOURCES)}")
    return dict(item, state=state, mode=int(mode, 8), secret=bool(item.get("secret", False)))


class SharedVariables(dict):
    """The task's variables, as given to the template lookup. The lookup
    deep-copies its variables for each template before it adds the
    template's own (template_path, ansible_managed, the item's vars): every
    fact and variable of the play, copied once per file. It only adds keys
    at the top and rendering reads the values, so a shallow copy keeps
    the task's variables just as unchanged."""

    def __deepcopy__(self, memo):
        return dict(self)


class ActionModule(ActionBase):
    # No remote temporary folder up front: a run where nothing differs costs
    # one command on the host. The copy action makes its own when it writes.
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("files", "restart_intent_dir"))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        files = self._task.args.get("files")
        if not isinstance(files, list):
            raise AnsibleActionFail("files: must be a list of files and directories")
        items = [check_item(i, item) for i, item in enumerate(files)]
        dests = [item["dest"] for item in items]
        if len(set(dests)) != len(dests):
            raise AnsibleActionFail(f"files: a path is listed twice: {sorted({d for d in dests if dests.count(d) > 1})}")

        intent_dir = self._task.args.get("restart_intent_dir")
        if not intent_dir and any(item.get("restarts") for item in items):
            raise AnsibleActionFail("restart_intent_dir: needed when an item lists restarts")

        shared = SharedVariables(task_vars)
        for item in items:
            if item["state"] == "file":
                item["data"] = self._content(item, shared)
                item["sha1"] = hashlib.sha1(to_bytes(item["data"], errors="surrogate_or_strict")).hexdigest()

        read = self._low_level_execute_command("/bin/sh -c " + shlex.quote(READ) + " read " + " ".join(map(shlex.quote, dests)))
        if read["rc"] != 0:
            raise AnsibleActionFail(f"reading the managed paths failed (rc {read['rc']}): {to_text(read['stderr'])[-500:]}")
        state = parse_state(to_text(read["stdout"]))

        # What differs is written by the module in one round trip; it records
        # the restart intents of those items before its first write, so a run
        # that stops after a write still knows.
        differing = [item for item in items if state.get(item["dest"]) != self._wanted(item)]
        done = {"results": [], "restarts": [], "diff": []}
        if differing:
            done = self._execute_module(
                module_name="airflow_ops.airflow_vm.managed_files",
                module_args={"files": [self._payload(item) for item in differing],
                             **({"restart_intent_dir": intent_dir} if intent_dir else {})},
                task_vars=task_vars)
            self._remove_tmp_path(self._connection._shell.tmpdir)
            if done.get("failed"):
                raise AnsibleActionFail(to_text(done.get("msg", "writing the managed paths failed")))
        written = {entry["dest"]: entry["changed"] for entry in done["results"]}

        results = []
        for item in items:
            entry = {"dest": item["dest"], **({"id": item["id"]} if "id" in item else {})}
            if item["dest"] not in written:
                results.append(dict(entry, changed=False))
                continue
            found, wanted = state.get(item["dest"]), self._wanted(item)
            was = "present" if wanted is None else "missing" if found is None else "different"
            results.append(dict(entry, changed=written[item["dest"]], was=was))

        changed = [entry["dest"] for entry in results if entry["changed"]]
        result.update(changed=bool(changed), changed_paths=changed, results=results, restarts=done["restarts"])
        if done.get("diff"):
            result["diff"] = done["diff"]
        if done.get("warnings"):  # the module's (a dry run's missing user or group)
            result["warnings"] = done["warnings"]
        return result

    @staticmethod
    def _payload(item: dict) -> dict:
        """What the module needs of an item: the content rendered, the source named no more."""
        keep = ("dest", "state", "owner", "group", "secret", "restarts", "restarts_by_option")
        payload = {key: item[key] for key in keep if key in item}
        if item["state"] != "absent":
            payload["mode"] = f"{item['mode']:04o}"
        if item["state"] == "file":
            payload["content"] = item["data"]
        return payload

    @staticmethod
    def _wanted(item: dict):
        """What the read shows for the item once it is as stated (None: nothing)."""
        kind = {"directory": "D", "file": "F"}.get(item["state"])
        return (kind, item["mode"], item["owner"], item["group"], item.get("sha1", "-")) if kind else None

    def _content(self, item: dict, task_vars: dict) -> str:
        if "content" in item:
            return to_text(item["content"])
        if "template" in item:
            lookup = self._shared_loader_obj.lookup_loader.get("ansible.builtin.template", loader=self._loader, templar=self._templar)
            return lookup.run([item["template"]], variables=task_vars, template_vars=item.get("vars", {}))[0]
        path = self._find_needle("files", item["src"])
        with open(to_bytes(path, errors="surrogate_or_strict"), "rb") as handle:
            return to_text(handle.read(), errors="surrogate_or_strict")
