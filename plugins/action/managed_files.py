# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of airflow_ops.airflow_vm.managed_files (docs: plugins/modules/managed_files.py).

The files and directories a role manages, each stated once as data (path,
owner, group, mode, content source). One remote read (mode, owner, group and
SHA-1 of every path) decides what differs; only that is written, through
Ansible's own copy action (check mode, --diff, become, atomic writes) and
file module (directories, attributes). Templates render on the controller
exactly as the template lookup renders them.
"""

from __future__ import annotations

import hashlib
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

SOURCES = ("template", "content", "src")
KEYS = {"dest", "state", "owner", "group", "mode", "secret", "vars", "id", "restarts", *SOURCES}

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

        for item in items:
            if item["state"] == "file":
                item["data"] = self._content(item, task_vars)
                item["sha1"] = hashlib.sha1(to_bytes(item["data"], errors="surrogate_or_strict")).hexdigest()

        read = self._low_level_execute_command("/bin/sh -c " + shlex.quote(READ) + " read " + " ".join(map(shlex.quote, dests)))
        if read["rc"] != 0:
            raise AnsibleActionFail(f"reading the managed paths failed (rc {read['rc']}): {to_text(read['stderr'])[-500:]}")
        state = parse_state(to_text(read["stdout"]))

        # The restart intent of every item that differs, recorded on the host
        # before the first write: a run that stops after a write still knows.
        differing = [item for item in items if state.get(item["dest"]) != self._wanted(item)]
        intents = sorted({name for item in differing for name in item.get("restarts", [])})
        if intents and not self._task.check_mode:
            record = self._low_level_execute_command(
                "/bin/sh -ec " + shlex.quote('cd "$0"; umask 022; for n; do [ -e "$n" ] || : > "$n"; done') + " "
                + " ".join(map(shlex.quote, [intent_dir, *intents])))
            if record["rc"] != 0:
                raise AnsibleActionFail(f"recording the restarts in {intent_dir} failed: {to_text(record['stderr'])[-500:]}")

        results, diffs = [], []
        for item in items:
            found = state.get(item["dest"])
            kind = {"directory": "D", "file": "F"}.get(item["state"])
            wanted = self._wanted(item)
            entry = {"dest": item["dest"], **({"id": item["id"]} if "id" in item else {})}
            if found == wanted:
                results.append(dict(entry, changed=False))
                continue
            done = self._file_module(item, task_vars) if kind != "F" else self._file(item, task_vars)
            if done.get("failed"):
                result.update(failed=True, msg=f"{item['dest']}: {done.get('msg', done)}", results=results)
                return result
            diff = done.pop("diff", None)
            if diff and not item["secret"]:
                diffs.extend(diff if isinstance(diff, list) else [diff])
            was = "present" if wanted is None else "missing" if found is None else "different"
            results.append(dict(entry, changed=bool(done.get("changed")), was=was))

        self._remove_tmp_path(self._connection._shell.tmpdir)
        changed = [entry["dest"] for entry in results if entry["changed"]]
        result.update(changed=bool(changed), changed_paths=changed, results=results, restarts=intents)
        if diffs:
            result["diff"] = diffs
        return result

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

    def _file_module(self, item: dict, task_vars: dict) -> dict:
        """A directory (created, re-owned, re-moded) or an absent path (removed)."""
        args = {"path": item["dest"], "state": item["state"]}
        if item["state"] == "directory":
            args.update(owner=item["owner"], group=item["group"], mode=f"{item['mode']:04o}")
        return self._execute_module(module_name="ansible.legacy.file", module_args=args, task_vars=task_vars)

    def _file(self, item: dict, task_vars: dict) -> dict:
        task = self._task.copy()
        task.args = {
            "content": item["data"],
            "dest": item["dest"],
            "owner": item["owner"],
            "group": item["group"],
            "mode": f"{item['mode']:04o}",
        }
        copy = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.copy",
            task=task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        return copy.run(task_vars=task_vars)
