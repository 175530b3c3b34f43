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
vars=$("$bin/ansible-inventory" -i "$inventory" --host "$host")
connection=$(echo "$vars" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("ansible_connection", "ssh"))')
address=$(echo "$vars" | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v.get("ansible_host", sys.argv[1]))' "$host")
user=$(echo "$vars" | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v.get("ansible_user", ""))')

tty=""
[ -t 0 ] && tty="-t"
[ -t 0 ] && [ "${connection#*docker}" != "$connection" ] && tty="-it"
echo "== journal of $unit on $host (Ctrl-C to stop)" >&2
case "$connection" in
  *docker*) exec docker exec $tty "$address" journalctl -f -n 100 -u "$unit" ;;
  *) exec ssh $tty ${user:+-l "$user"} "$address" sudo journalctl -f -n 100 -u "$unit" ;;
esac
