#!/usr/bin/python
# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The writing half of managed_files: plugins/action/managed_files.py reads the host and renders on the controller,
this module writes what differs on the host in one round trip."""

from __future__ import annotations

DOCUMENTATION = r"""
module: managed_files
short_description: Files and directories stated once as data, written only where the host differs
description:
  - Each item states a path, its owner, group and mode, and for a file its content source (a template of the role, a
    file of the role, or literal content).
  - One remote read (a shell command) gets the mode, owner, group and SHA-1 of every listed path; when nothing differs,
    that is all. Otherwise the paths that differ are sent, rendered, to this module, which writes them all in one more
    round trip (each file atomically, as a temporary file beside it, owned and moded, then renamed over it), and supports check
    mode and C(--diff).
  - Templates are rendered on the controller as the P(ansible.builtin.template#lookup) lookup renders them; the module
    itself only takes rendered O(files[].content) (the action plugin resolves O(files[].template) and O(files[].src)).
  - Owners and groups are looked up before the first write; a missing one fails the task naming the path, with nothing
    written.
  - The module never logs its arguments on the host (they may hold secrets).
version_added: 0.2.0
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
      restarts_by_option:
        description:
          - For an INI file (such as C(airflow.cfg)) whose options are not all read by everything in O(files[].restarts),
            maps C(section.option) (lower case) to the names that read that option.
          - When the file exists and every option that its change adds, removes or sets to another value is listed here, only
            the names of those options that are also in O(files[].restarts) are recorded (none when no option changed, only
            comments or spacing); any other option, a change of only the owner, group or mode, a missing file or one that does
            not parse records all of O(files[].restarts).
        type: dict
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

import configparser
import grp
import os
import pwd
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

# The diff shows a file's text; a larger or binary file is named, not shown.
DIFF_LIMIT = 256 * 1024

ITEM = {
    "dest": {"type": "path", "required": True},
    "state": {"type": "str", "choices": ["file", "directory", "absent"], "default": "file"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "str"},
    "template": {"type": "str"},
    "src": {"type": "str"},
    "content": {"type": "str"},
    "secret": {"type": "bool", "default": False, "no_log": False},
    "vars": {"type": "dict"},
    "id": {"type": "raw"},
    "restarts": {"type": "list", "elements": "str"},
    "restarts_by_option": {"type": "dict"},
}


def found(path):
    """(kind, mode, uid, gid, content or None) of the path, None when it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    kind = "D" if stat.S_ISDIR(st.st_mode) else "F" if stat.S_ISREG(st.st_mode) else "other"
    data = None
    if kind == "F":
        with open(path, "rb") as handle:
            data = handle.read()
    return kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, data


def ids(module, item):
    """The item's (uid, gid). An owner or group the host lacks fails the task;
    in check mode it is -1 instead, with a warning (an earlier task of the
    dry run, which changed nothing, would create it), so the item shows as a
    change."""
    numbers = []
    for kind, name, lookup in (("owner", item["owner"], pwd.getpwnam), ("group", item["group"], grp.getgrnam)):
        try:
            numbers.append(lookup(name)[2])
        except KeyError:
            said = f"{item['dest']}: {kind} {name!r} is not a {'user' if kind == 'owner' else 'group'} on this host"
            if not module.check_mode:
                module.fail_json(msg=said)
            module.warn(f"{said} (yet: a dry run)")
            numbers.append(-1)
    return tuple(numbers)


def text_of(data):
    """The text for a diff, or None when it is binary or too large."""
    if len(data) > DIFF_LIMIT or b"\0" in data:
        return None
    return to_text(data, errors="surrogate_or_strict")


def write_file(path, data, uid, gid, mode):
    """Atomic: a temporary file beside the path, owned and moded, renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def ini_options(data):
    """{'section.option': value} of INI text (option names as configparser folds them), None when it does not parse."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(to_text(data, errors="surrogate_or_strict"))
    except (configparser.Error, UnicodeError):
        return None
    return {f"{section.lower()}.{option}": value for section in parser.sections() for option, value in parser.items(section)}


def restarts_of(item, now):
    """The names to record when the item differs from now, what found() read (see restarts_by_option)."""
    names, readers = item["restarts"] or [], item.get("restarts_by_option")
    if not names or not readers or item["state"] != "file" or now is None or now[0] != "F":
        return names
    old, data = now[4], to_bytes(item["content"] or "", errors="surrogate_or_strict")
    before, after = ini_options(old), ini_options(data)
    if old == data or before is None or after is None:
        return names
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    if not changed <= readers.keys():
        return names
    wanted = {name for key in changed for name in readers[key] or []}
    return [name for name in names if name in wanted]


def apply(module, item, now, check):
    """Bring one item from now (what found() read) to its state; returns (changed, diff or None)."""
    path, state = item["dest"], item["state"]
    if state == "absent":
        if now is None:
            return False, None
        if not check:
            if now[0] == "D":
                shutil.rmtree(path)
            else:
                os.unlink(path)
        return True, {"before": {"path": path, "state": "present"}, "after": {"path": path, "state": "absent"}}

    uid, gid = ids(module, item)
    mode = int(item["mode"], 8)
    if state == "directory":
        if now is not None and now[0] != "D":
            module.fail_json(msg=f"{path}: is a file or link, not a directory; remove it or change the item's state")
        if now == ("D", mode, uid, gid, None):
            return False, None
        if not check:
            if now is None:
                os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        before = {"path": path, "state": "absent"} if now is None else {"path": path, "state": "directory", "mode": f"{now[1]:04o}"}
        return True, {"before": before, "after": {"path": path, "state": "directory", "mode": item["mode"]}}

    if now is not None and now[0] != "F":
        module.fail_json(msg=f"{path}: is a directory or link, not a file; remove it or change the item's state")
    if item.get("content") is None:
        module.fail_json(msg=f"{path}: no content (a template or src is rendered by the action plugin on the controller)")
    data = to_bytes(item["content"], errors="surrogate_or_strict")
    if now == ("F", mode, uid, gid, data):
        return False, None
    diff = None
    if not item["secret"]:
        before, after = (None if now is None else text_of(now[4])), text_of(data)
        if now is not None and now[4] == data:  # only the attributes differ
            diff = {"before": {"path": path, "mode": f"{now[1]:04o}"}, "after": {"path": path, "mode": item["mode"]}}
        elif after is not None and (before is not None or now is None):
            diff = {"before_header": path, "after_header": path, "before": before or "", "after": after}
    if not check:
        if now is None and not os.path.isdir(os.path.dirname(path)):
            module.fail_json(msg=f"{path}: its folder does not exist; list the folder first")
        write_file(path, data, uid, gid, mode)
    return True, diff


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True, "options": ITEM},
            "restart_intent_dir": {"type": "path"},
        },
        supports_check_mode=True,
        # the contents may hold secrets: the arguments are never logged on the host
        no_log=True,
    )
    check, files = module.check_mode, module.params["files"]
    # each path read and compared once: the restart decision, the report and the writes start from that
    now = [found(item["dest"]) for item in files]
    planned = [apply(module, item, was, True) for item, was in zip(files, now)]
    # the restart intent of every item that differs, recorded before the first write
    intents = sorted({name for item, was, (differs, _) in zip(files, now, planned) if differs for name in restarts_of(item, was)})
    if intents and not check:
        folder = module.params["restart_intent_dir"]
        if not folder:
            module.fail_json(msg="restart_intent_dir: needed when an item lists restarts")
        for name in intents:
            with open(os.path.join(folder, name), "a", encoding="utf-8"):
                pass
    results, diffs = [], []
    for item, was, (changed, diff) in zip(files, now, planned):
        if changed and not check:
            apply(module, item, was, False)
        results.append({"dest": item["dest"], "changed": changed})
        if diff and module._diff:
            diffs.append(diff)
    changed = [entry["dest"] for entry in results if entry["changed"]]
    module.exit_json(changed=bool(changed), changed_paths=changed, results=results, restarts=intents, diff=diffs)


if __name__ == "__main__":
    main()
