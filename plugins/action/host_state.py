# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of airflow_ops.airflow_vm.host_state (docs: plugins/modules/host_state.py).

One read-only shell command on the host: which of the given packages are
installed, the state of the given units, and whatever else the role's own
script prints, as lines the role's tasks compare with what they want.
"""

from __future__ import annotations

import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

# "pkg NAME installed" per installed package, "unit NAME ACTIVE ENABLED" per
# unit (ENABLED is "no" for a unit systemd does not know: systemd 252 prints
# nothing for it, 257 "not-found"), then per service or timer that matches a
# pattern (loaded, so template instances count, or enabled; bytewise order;
# a failed listing fails the read, but not list-unit-files' exit 1 for
# "nothing matches"), "stale UNIT" for each active unit of restart_files
# that one of its files is newer than (its last start: microseconds of
# systemd's ActiveEnterTimestamp against the files' mtime; an mtime in the
# future, after the clock was set back, is not taken), "calendar ok" or
# "calendar bad: WHY" for a calendar expression. No globbing in the read
# (set -f): the patterns go to systemctl.
READ = r"""set -f
[ -z "$packages" ] || dpkg-query -W -f='pkg ${Package} ${db:Status-Status}\n' $packages 2>/dev/null
if [ -n "$patterns" ]; then
  loaded=$(systemctl list-units --all --plain --no-legend --type=service,timer $patterns) || exit 1
  enabled=$(systemctl list-unit-files --no-legend --type=service,timer --state=enabled $patterns)
  [ $? -le 1 ] || exit 1
  for u in $(printf '%s\n%s\n' "$loaded" "$enabled" | cut -d' ' -f1 | LC_ALL=C sort -u); do
    case " $units " in *" $u "*) ;; *) units="$units $u" ;; esac
  done
fi
for u in $units; do
  e=$(systemctl is-enabled "$u" 2>/dev/null)
  [ "$e" != not-found ] || e=
  echo "unit $u $(systemctl is-active "$u") ${e:-no}"
done
now=$(date +%s%6N)
for spec in $restart_files; do
  u=${spec%%=*}
  [ "$(systemctl is-active "$u")" = active ] || continue
  since=$(date -d "$(systemctl show -p ActiveEnterTimestamp --value --timestamp=us+utc "$u")" +%s%6N) || continue
  for f in $(printf '%s\n' "${spec#*=}" | tr , ' '); do
    [ -e "$f" ] || continue
    m=$(stat -c %.6Y "$f" | tr -d .)
    if [ "$m" -gt "$since" ] && [ "$m" -le "$now" ]; then echo "stale $u"; break; fi
  done
done
[ -z "$calendar" ] || { why=$(systemd-analyze calendar "$calendar" 2>&1 >/dev/null) && echo "calendar ok" || echo "calendar bad:" $why; }
set +f"""


def plain(name, more: str = "") -> bool:
    """A name the read can take unquoted: no blank, quote or shell sign (nor one of `more`), and no leading '-'."""
    return isinstance(name, str) and bool(name) and not name.startswith("-") and not set(name) & set(" \t\n'\"$`\\" + more)


def names(task_args: dict, key: str) -> list[str]:
    value = task_args.get(key, [])
    if not isinstance(value, list) or not all(plain(n) for n in value):
        raise AnsibleActionFail(f"{key}: must be a list of plain names")
    return value


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("packages", "units", "patterns", "restart_files", "calendar", "script", "args"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        packages, units = names(self._task.args, "packages"), names(self._task.args, "units")
        patterns = names(self._task.args, "patterns")
        script, args = self._task.args.get("script", ""), self._task.args.get("args", [])
        restart_files = self._task.args.get("restart_files", {})
        if not isinstance(restart_files, dict) or not all(
            plain(unit, ",=") and isinstance(paths, list) and all(plain(p, ",=") and p.startswith("/") for p in paths)
            for unit, paths in restart_files.items()
        ):
            raise AnsibleActionFail("restart_files: must map unit names to lists of absolute paths (no blanks, quotes, ',' or '=')")
        calendar = self._task.args.get("calendar", "")
        if not isinstance(calendar, str):
            raise AnsibleActionFail("calendar: must be a systemd calendar expression (a string) or empty")
        if not isinstance(script, str) or not isinstance(args, list):
            raise AnsibleActionFail("script: must be shell text; args: a list of its arguments")
        specs = " ".join(f"{unit}={','.join(paths)}" for unit, paths in restart_files.items() if paths)
        text = (f"packages={shlex.quote(' '.join(packages))} units={shlex.quote(' '.join(units))} patterns={shlex.quote(' '.join(patterns))}"
                f" restart_files={shlex.quote(specs)} calendar={shlex.quote(calendar)}\n"
                f"{READ}\n{script}\nexit 0")
        # read-only: runs in check mode too
        read = self._low_level_execute_command("/bin/sh -c " + shlex.quote(text) + " state " + " ".join(shlex.quote(str(a)) for a in args))
        stdout = to_text(read["stdout"])
        lines = stdout.splitlines()
        # a dry run installed nothing: the tasks that would start or enable
        # these units skip them (in a real run a missing unit is an error)
        unknown = [line.split()[1] for line in lines if line.startswith("unit ") and line.endswith(" no")]
        # what the role's install task installs (removed ones whose
        # configuration is kept count as missing)
        installed = {line.split()[1] for line in lines if line.startswith("pkg ") and line.endswith(" installed")}
        result.update(changed=False, rc=read["rc"], stdout=stdout, stdout_lines=lines,
                      missing_packages=[name for name in packages if name not in installed],
                      stale_units=[line.split()[1] for line in lines if line.startswith("stale ")],
                      dry_run_missing=unknown if self._task.check_mode else [])
        if read["rc"] != 0:
            result.update(failed=True, msg=f"reading the host's state failed (rc {read['rc']}): {to_text(read['stderr'])[-500:]}")
        return result
