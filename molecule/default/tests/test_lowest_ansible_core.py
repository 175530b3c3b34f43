"""The lowest ansible-core that meta/runtime.yml claims (requires_ansible:
">=X.Y.Z"), on the real stack, with only galaxy.yml's dependencies (and the
test bed's own collections). `make lint` builds it (.venv-lowest) and
syntax-checks every shipped playbook with it; here it runs playbooks/site.yml
over the whole stack with a setting changed (the upkeep script is written
again; no restart, to keep `make test` short), then back, and a run after
that changes nothing."""

from __future__ import annotations

import re

import testinfra.utils.ansible_runner

from airflow_testlib import (
    INVENTORY,
    LOWEST_BIN,
    LOWEST_COLLECTIONS,
    assert_ok,
    changed_count,
    lowest_ansible_core,
    playbook_tail,
    run_playbook,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_scheduler")

UPKEEP = "/usr/local/sbin/airflow-maintenance"


def test_lowest_ansible_core_deploys_a_change(host):
    lowest_ansible_core(str(LOWEST_BIN / "ansible-playbook"))
    env = {"ANSIBLE_COLLECTIONS_PATH": LOWEST_COLLECTIONS, "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"}

    def deploy(extra_vars: dict):
        result = run_playbook("playbooks/site.yml", extra_vars, ansible_playbook=str(LOWEST_BIN / "ansible-playbook"), env=env)
        assert_ok(result)
        return result

    before = host.file(UPKEEP).content_string
    days = int(re.search(r"^log_days=(\d+)$", before, re.M).group(1)) + 1
    changed = deploy({"airflow_log_retention_days": days})
    assert changed_count(changed) > 0
    assert f"\nlog_days={days}\n" in host.file(UPKEEP).content_string, f"{UPKEEP} lacks the new setting"

    deploy({})
    assert host.file(UPKEEP).content_string == before, f"{UPKEEP} differs from before the change"
    again = deploy({})
    assert changed_count(again) == 0, playbook_tail(again)
