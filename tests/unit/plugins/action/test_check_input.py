"""airflow_ops.airflow_vm.check_input, run by ansible-playbook on this machine
(connection local, facts of this machine): the platform from the calling
role's meta/main.yml, every failed check reported at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import ansible_playbook, link_collection

CHECKS = textwrap.dedent(
    """
    - name: Gather the distribution facts
      ansible.builtin.setup:
        gather_subset: [min]
    - name: Check the input
      airflow_ops.airflow_vm.check_input:
        checks:
          - {var: probe_port, ok: "{{ 1 <= probe_port | int <= 65535 }}", msg: "must be a port number, 1-65535."}
          - {var: probe_name, ok: "{{ probe_name | length > 0 }}", msg: must not be empty.}
    """
)


def os_release() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs}


# Ansible's distribution fact by os-release ID (the machines the tests run on: ours and GitHub's)
DISTRIBUTIONS = {"debian": "Debian", "ubuntu": "Ubuntu"}


def distribution() -> str:
    return DISTRIBUTIONS[os_release()["ID"]]


def role_bed(tmp_path: Path, releases: list[str]) -> Path:
    """A role `probe` whose meta/main.yml supports `releases` of this machine's distribution, and a playbook running its checks."""
    link_collection(tmp_path)
    role = tmp_path / "roles/probe"
    (role / "tasks").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "meta/main.yml").write_text(yaml.safe_dump({"galaxy_info": {"platforms": [{"name": distribution(), "versions": releases}]}}))
    (role / "tasks/main.yml").write_text(CHECKS)
    playbook = tmp_path / "site.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  roles: [probe]\n")
    return playbook


@pytest.fixture
def release() -> str:
    here = os_release()
    if here.get("ID") not in DISTRIBUTIONS:
        pytest.skip(f"the platform checks know the distribution facts of {', '.join(DISTRIBUTIONS)} only")
    return here["VERSION_CODENAME"]


def test_passes_on_a_listed_platform_with_good_input(tmp_path, release):
    result = ansible_playbook(tmp_path, role_bed(tmp_path, ["potato", release]), {"probe_port": 8080, "probe_name": "x"}, "-v")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 checks passed" in result.stdout


def test_names_every_failure_and_the_supported_platforms(tmp_path, release):
    """Another release, a bad port and an empty name: one failure lists all
    three, the platform first, each with its variable."""
    result = ansible_playbook(tmp_path, role_bed(tmp_path, ["potato", "slink"]), {"probe_port": 70000, "probe_name": ""})
    assert result.returncode != 0
    said = " ".join(result.stdout.split())
    version = os_release().get("VERSION_ID", "")
    assert f"platform: unsupported platform: {distribution()} {version}" in said, result.stdout[-3000:]
    assert f"({release}); supported: {distribution()} potato, slink." in said
    assert said.index("platform: unsupported") < said.index("probe_port: must be a port number, 1-65535.") < said.index(
        "probe_name: must not be empty."
    )
