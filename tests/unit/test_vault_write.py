"""playbooks/tasks/vault_write.yml (make bootstrap, each step of make
rotate): the vault is written encrypted, created owner-only (also under a
umask that lets others read), into a new file that
replaces the old one by a rename, so the old vault stays whole until the new
one is. A write that fails half way (here: a file size limit, as a full disk
would) leaves the old vault as it was and no scratch file behind."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import yaml
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

from playrun import PYTHON, ROOT, run_play


def write(tmp_path: Path, secrets: dict | str, password_file: Path, max_file_size: int = resource.RLIM_INFINITY):
    """Run the task file; max_file_size: the size each file its processes write may reach (they inherit the limit)."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_size, limit[1]))
    # files are created as the task makes them, not as this process would
    umask = os.umask(0)
    try:
        return run_play(tmp_path, {"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": PYTHON}}}},
            [{"name": "Write", "hosts": "localhost", "gather_facts": False, "tasks": [
                {"name": "write the vault", "ansible.builtin.include_tasks": str(ROOT / "playbooks/tasks/vault_write.yml"),
                 "vars": {"vault_write_secrets": secrets, "vault_write_file": str(tmp_path / "vault.yml"),
                          "vault_write_password_file": str(password_file)}}]}],
            env={"ANSIBLE_PIPELINING": "true"})  # the module is sent through a pipe, not written to a file
    finally:
        os.umask(umask)
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)


def read(vault: Path, password: bytes) -> dict:
    return yaml.safe_load(VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))]).decrypt(vault.read_bytes()))


def test_the_vault_is_replaced_whole_and_kept_on_a_failed_write(tmp_path):
    password = tmp_path / "pass"
    password.write_text("s3cret-pass\n")
    vault = tmp_path / "vault.yml"
    for secrets in ({"vault_a": "one"}, {"vault_a": "two", "vault_b": "three"}):
        run = write(tmp_path, secrets, password)
        assert run.returncode == 0, run.stdout[-3000:]
        assert read(vault, b"s3cret-pass") == secrets
        assert oct(vault.stat().st_mode & 0o777) == "0o600"
    before = vault.read_bytes()
    # ~800 kB encrypted, over the limit; the plain text (~200 kB) is under it, so only the vault write fails
    failed = write(tmp_path, "{{ {'vault_a': 'four', 'vault_c': 'x' * 200000} }}", password, max_file_size=300_000)
    assert failed.returncode != 0, failed.stdout[-3000:]
    assert "four" not in failed.stdout + failed.stderr and "xxxx" not in failed.stdout, "a secret reached the output"
    assert vault.read_bytes() == before, "a failed write changed the vault"
    assert sorted(p.name for p in tmp_path.glob("vault.yml*")) == ["vault.yml"], "a scratch file was left behind"
