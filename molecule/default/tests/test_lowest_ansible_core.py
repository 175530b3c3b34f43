"""The lowest ansible-core that meta/runtime.yml claims (requires_ansible:
">=X.Y.Z"), on the real stack, with only galaxy.yml's dependencies (and the
test bed's docker connection). `make lint` builds it (.venv-lowest) and
syntax-checks every shipped playbook with it; here it runs playbooks/site.yml
over the whole stack with a setting changed (the upkeep script is written
again; no restart, to keep `make test` short), then back, and a run after
that changes nothing."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import ansible_collections
import testinfra.utils.ansible_runner
import yaml

from airflow_testlib import INVENTORY, ROOT, changed_count, playbook_tail, run_playbook

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_scheduler")

LOWEST = ROOT / ".venv-lowest/bin"
DECLARED = ROOT / ".cache/collections-declared"
UPKEEP = "/usr/local/sbin/airflow-maintenance"


def lowest_core() -> str:
    claim = re.search(r'^requires_ansible: ">=([0-9.]+)"$', (ROOT / "meta/runtime.yml").read_text(), re.M)
    assert claim, "meta/runtime.yml: requires_ansible must read \">=X.Y.Z\""
    return claim.group(1)


def test_lowest_ansible_core_deploys_a_change(host):
    out = subprocess.run([str(LOWEST / "ansible"), "--version"], capture_output=True, text=True, check=True).stdout
    version = re.search(r"\[core ([0-9.]+)\]", out).group(1)
    assert version == lowest_core(), f"{LOWEST} has ansible-core {version}, requires_ansible claims >={lowest_core()}"
    declared = sorted(yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"])
    present = sorted(f"{path.parent.name}.{path.name}" for path in (DECLARED / "ansible_collections").glob("*/*"))
    assert present == declared, f"{DECLARED} holds {present}, galaxy.yml depends on {declared}"
    with tempfile.TemporaryDirectory() as testbed:
        # the test VMs' connection plugin, and nothing else of the bundle
        docker = Path(testbed, "ansible_collections/community/docker")
        docker.parent.mkdir(parents=True)
        docker.symlink_to(Path(list(ansible_collections.__path__)[0], "community/docker"))
        env = {"ANSIBLE_COLLECTIONS_PATH": f"{DECLARED}:{testbed}", "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"}

        def deploy(extra_vars: dict):
            result = run_playbook("playbooks/site.yml", extra_vars, ansible_playbook=str(LOWEST / "ansible-playbook"), env=env)
            assert result.returncode == 0, playbook_tail(result)
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
