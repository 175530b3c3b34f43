"""airflow_ops.airflow_vm.check_input, run by ansible-playbook on this machine
(connection local, facts of this machine): the platform from the calling
role's meta/main.yml, every failed check reported at once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret
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


def test_refuses_line_breaks_without_printing_them(tmp_path, release):
    """A value with a line break is refused, naming where it is and never
    what it is: a vault value made with `echo secret | ansible-vault
    encrypt_string` (left encrypted by ansible-core 2.17's templar, a str on
    2.19), one reached through a template, a dict's value, and an option of
    the role's argument_specs that no check names. A check marked multiline
    (a PEM) takes one."""
    playbook = role_bed(tmp_path, [release])
    secret = VaultLib([("default", VaultSecret(b"probe-vault"))]).encrypt("s3cret-1234567890\n").decode()
    role = tmp_path / "roles/probe"
    (role / "defaults").mkdir()
    (role / "defaults/main.yml").write_text(
        "probe_name: !vault |\n" + textwrap.indent(secret, "  ") + "\n"
        'probe_via: "{{ probe_name }}"\n'
        "probe_config: {core: {executor: \"CeleryExecutor\\r\"}}\n"
        'probe_unchecked: "first\\nsecond"\n'
        'probe_pem: "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"\n'
        "probe_count: 3\n"
    )
    options = {name: {"type": kind} for name, kind in
               [("probe_name", "str"), ("probe_unchecked", "str"), ("probe_pem", "str"), ("probe_count", "int"),
                ("probe_via", "str"), ("probe_config", "dict"), ("probe_port", "int")]}
    (role / "meta/argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": {"main": {"options": options}}}))
    (role / "tasks/main.yml").write_text(CHECKS + textwrap.indent(textwrap.dedent(
        """\
        - {var: probe_via / probe_count, ok: true, msg: unused.}
        - {var: probe_config.core.executor, ok: true, msg: unused.}
        - {var: probe_pem, ok: true, msg: unused., multiline: true}
        """), "      "))
    (tmp_path / "vault-pass").write_text("probe-vault\n")
    result = ansible_playbook(tmp_path, playbook, {"probe_port": 8080}, "--vault-password-file", str(tmp_path / "vault-pass"))
    assert result.returncode != 0, result.stdout[-3000:]
    problems = [line.split(":")[0] for line in json.loads(result.stdout.split("FAILED! => ", 1)[1].splitlines()[0])["problems"]]
    assert sorted(problems) == ["probe_config.core.executor", "probe_name", "probe_unchecked", "probe_via"], result.stdout[-3000:]
    assert "s3cret" not in result.stdout + result.stderr and "second" not in result.stdout
    assert "must be on one line" in result.stdout


def test_refuses_a_name_with_the_roles_prefix_that_is_no_option(tmp_path, release):
    """probe_prot (a typo of probe_port) and probe_colour (no option near)
    are refused, the first with the option it is near; an option of another
    entry point and a name of another prefix pass, and so does one listed in
    probe_foreign_variables (which must be a list of names). Without
    argument_specs (the tests above) there is no check of names."""
    playbook = role_bed(tmp_path, [release])
    options = {"probe_port": {"type": "int"}, "probe_name": {"type": "str"}, "probe_foreign_variables": {"type": "list"}}
    spec = {"main": {"options": options}, "other": {"options": {"probe_other": {"type": "str"}}}}
    (tmp_path / "roles/probe/meta/argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": spec}))
    names = {"probe_port": 8080, "probe_name": "x", "probe_other": "y", "prober_mine": 1}
    passed = ansible_playbook(tmp_path, playbook, names)
    assert passed.returncode == 0, passed.stdout[-3000:]
    result = ansible_playbook(tmp_path, playbook, names | {"probe_prot": 8081, "probe_colour": "blue"})
    assert result.returncode != 0, result.stdout[-3000:]
    problems = json.loads(result.stdout.split("FAILED! => ", 1)[1].splitlines()[0])["problems"]
    own = " or give a variable of your own a prefix other than probe_ (one of another role on these hosts: list it in"
    assert problems == [
        "probe_colour: the probe role has no such variable, so it would change nothing: correct the name,"
        f"{own} probe_foreign_variables).",
        "probe_prot: the probe role has no such variable, so it would change nothing (did you mean probe_port?):"
        f" correct the name,{own} probe_foreign_variables).",
    ], result.stdout[-3000:]
    foreign = names | {"probe_prot": 8081, "probe_colour": "blue", "probe_foreign_variables": ["probe_colour"]}
    result = ansible_playbook(tmp_path, playbook, foreign)
    problems = json.loads(result.stdout.split("FAILED! => ", 1)[1].splitlines()[0])["problems"]
    assert [problem.split(":")[0] for problem in problems] == ["probe_prot"], result.stdout[-3000:]
    result = ansible_playbook(tmp_path, playbook, foreign | {"probe_foreign_variables": "probe_colour"})
    problems = json.loads(result.stdout.split("FAILED! => ", 1)[1].splitlines()[0])["problems"]
    assert problems == [
        "probe_foreign_variables: must be a list of variable names (strings), not 'probe_colour'."
    ], result.stdout[-3000:]
