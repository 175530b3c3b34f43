#!/usr/bin/env bash
# Follow the journal of one Airflow component on the first host that runs it.
#   scripts/logs.sh inventories/<env> <component>
# component: api-server scheduler dag-processor triggerer worker flower
# (or postgresql / redis-server for the data stores).
set -euo pipefail
inventory="${1:?usage: $0 INVENTORY COMPONENT}"
component="${2:?usage: $0 INVENTORY COMPONENT}"
component="${component//_/-}"
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../.venv/bin"
# the host's variables include the vault's: the inventory's password file
# unless one is given (as make deploy uses it)
if [ -z "${ANSIBLE_VAULT_PASSWORD_FILE:-}" ] && [ -f "$inventory/.vault_pass" ]; then
  export ANSIBLE_VAULT_PASSWORD_FILE="$inventory/.vault_pass"
fi

case "$component" in
  postgresql) group=postgresql unit=postgresql@* ;;
  redis|redis-server) group=redis unit=redis-server ;;
  *) group="airflow_${component//-/_}" unit="airflow-$component" ;;
esac
# The first host of the group and how Ansible reaches it
# (scripts/logs-reach.j2), one argument a line: one inventory load.
# (ansible's own complaints, e.g. a vault it cannot open, are shown when it
# answers nothing)
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
reach=$(ANSIBLE_LOAD_CALLBACK_PLUGINS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 "$bin/ansible" -i "$inventory" "$group[0]" -o \
  -m ansible.builtin.debug -a "msg={{ lookup('ansible.builtin.template', '$here/logs-reach.j2') }}" 2>"$errors" |
  python3 -c '
import json, os, shlex, sys
out = sys.stdin.read()
if "=> " not in out:
    with open(sys.argv[3]) as errors:
        lines = errors.read().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(("[ERROR]", "ERROR!"))), len(lines))
    said = lines[start:start + 10]
    if said:
        sys.exit("ansible could not read the first host of %s from %s:\n%s" % (sys.argv[1], sys.argv[2], "\n".join(said)))
    sys.exit("no host in group %s of %s" % (sys.argv[1], sys.argv[2]))
try:
    msg = json.JSONDecoder().raw_decode(out.split("=> ", 1)[1])[0]["msg"]
    host, conn, addr, user, port, key, args = json.loads(msg) if isinstance(msg, str) else msg
except (IndexError, KeyError, TypeError, ValueError):
    sys.exit("cannot read how to reach the first host of %s from the inventory: %s" % (sys.argv[1], out.strip()))
print(host)
print(conn)
print(addr)
for flag, value in (("-l", user), ("-p", port), ("-i", os.path.expanduser(str(key)) if key else "")):
    if str(value):
        print(flag)
        print(value)
for arg in shlex.split(args):
    print(arg)
' "$group" "$inventory" "$errors") || exit 1
rm -f "$errors"
trap - EXIT
set --
while IFS= read -r arg; do set -- "$@" "$arg"; done <<EOF
$reach
EOF
host=$1 connection=$2 address=$3
shift 3

tty=""
[ -t 0 ] && tty="-t"
[ -t 0 ] && [ "${connection#*docker}" != "$connection" ] && tty="-it"
echo "== journal of $unit on $host (Ctrl-C to stop)" >&2
case "$connection" in
  *docker*) exec docker exec $tty "$address" journalctl -f -n 100 -u "$unit" ;;
  *) exec ssh $tty "$@" "$address" sudo journalctl -f -n 100 -u "$unit" ;;
esac
