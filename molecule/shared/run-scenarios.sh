#!/usr/bin/env bash
# Run molecule scenarios one after the other (all of them, even after one
# failed), each scenario's output to the terminal and to
# .molecule-logs/<scenario>.log; at the end, per scenario: its wall time,
# its result and the pytest summary of what failed. CI keeps only the end
# of the output: this is what it must show.
#
#   molecule/shared/run-scenarios.sh <scenario>...
set -uo pipefail
cd "$(dirname "$0")/../.."

logs=.molecule-logs
mkdir -p "$logs"
summary=()
failed=0
for scenario in "$@"; do
  start=$(date +%s)
  molecule test -s "$scenario" 2>&1 | tee "$logs/$scenario.log"
  rc=${PIPESTATUS[0]}
  took=$(( $(date +%s) - start ))
  if [ "$rc" -eq 0 ]; then
    summary+=("$scenario: passed in ${took} s")
  else
    failed=1
    summary+=("$scenario: FAILED (rc $rc) after ${took} s")
    # pytest's short summary (molecule boxes and wraps it): FAILED/ERROR lines and the count
    summary+=("$(sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^ *[│|] \{0,1\}//' "$logs/$scenario.log" \
      | awk '/short test summary info/ {on=1; next} on && /(passed|failed|error).* in [0-9.]+s/ {print; on=0} on' \
      | sed 's/^/    /')")
  fi
done

echo
echo "== molecule scenarios (logs in $logs/)"
printf '%s\n' "${summary[@]}"
exit "$failed"
