#!/usr/bin/env bash
# Follow the journal of one Airflow component on the first host that runs it.
#   scripts/logs.sh inventories/<env> <component>
# component: api-server scheduler dag-processor triggerer worker flower
# (or postgresql / redis-server for the data stores).
set -euo pipefail
inventory="${1:?usage: $0 INVENTORY COMPONENT}"
component="${2:?usage: $0 INVENTORY COMPONENT}"
component="${component//_/-}"
bin="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin"
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
host=$("$bin/ansible-inventory" -i "$inventory" --graph "$group" 2>/dev/null |
  sed -n 's/^ *|--\([^@]*\)$/\1/p' | head -1)
[ -n "$host" ] || { echo "no host in group $group of $inventory" >&2; exit 1; }
# how Ansible reaches the host: connection, address, and for ssh the user,
# port, key and extra ssh arguments of the inventory (one argument a line)
mapfile -t reach < <("$bin/ansible-inventory" -i "$inventory" --host "$host" | python3 -c '
import json, os, shlex, sys
v, host = json.load(sys.stdin), sys.argv[1]
print(v.get("ansible_connection", "ssh"))
print(v.get("ansible_host", host))
opts = [("-l", v.get("ansible_user")), ("-p", v.get("ansible_port")), ("-i", os.path.expanduser(v.get("ansible_ssh_private_key_file") or ""))]
for flag, value in opts:
    if value not in (None, ""):
        print(flag)
        print(value)
for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
    for arg in shlex.split(str(v.get(key) or "")):
        print(arg)
' "$host")
connection=${reach[0]} address=${reach[1]}

tty=""
[ -t 0 ] && tty="-t"
[ -t 0 ] && [ "${connection#*docker}" != "$connection" ] && tty="-it"
echo "== journal of $unit on $host (Ctrl-C to stop)" >&2
case "$connection" in
  *docker*) exec docker exec $tty "$address" journalctl -f -n 100 -u "$unit" ;;
  *) exec ssh $tty "${reach[@]:2}" "$address" sudo journalctl -f -n 100 -u "$unit" ;;
esac
