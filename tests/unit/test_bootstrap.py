"""`make bootstrap` (playbooks/bootstrap.yml) on the controller: it writes an
environment's vault once, encrypted with a new password file, never
overwrites either, and refuses a committed vault whose password file is
missing (a fresh clone) instead of writing a password that cannot open it.
"""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import yaml
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

from playrun import ROOT, run_playbook

SECRETS = {
    "vault_airflow_api_secret_key": 48,
    "vault_airflow_jwt_secret": 48,
    "vault_postgresql_airflow_password": 32,
    "vault_redis_password": 32,
    "vault_airflow_admin_password": 20,
}


def bootstrap(tmp_path: Path, env_dir: Path) -> subprocess.CompletedProcess:
    return run_playbook(tmp_path, ROOT / "playbooks/bootstrap.yml", "localhost,", extra_vars={"bootstrap_dir": str(env_dir)},
                        unset=("ANSIBLE_VAULT_PASSWORD_FILE",))


def changed(run: subprocess.CompletedProcess) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", run.stdout))


def test_bootstrap_writes_the_vault_once(tmp_path):
    env_dir = tmp_path / "inventories" / "test"
    env_dir.mkdir(parents=True)
    first = bootstrap(tmp_path, env_dir)
    assert first.returncode == 0, first.stdout[-3000:]
    password, vault = env_dir / ".vault_pass", env_dir / "group_vars/all/vault.yml"
    assert oct(password.stat().st_mode & 0o777) == "0o600"
    text = vault.read_bytes()
    assert text.startswith(b"$ANSIBLE_VAULT;1.1;AES256"), "the vault is not encrypted"
    assert password.read_text().strip() not in text.decode()
    secrets = yaml.safe_load(VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password.read_bytes().strip()))]).decrypt(text))
    assert len(base64.urlsafe_b64decode(secrets["vault_airflow_fernet_key"])) == 32, "not a Fernet key"
    for name, length in SECRETS.items():
        assert re.fullmatch(rf"[A-Za-z0-9]{{{length}}}", secrets[name]), name
    assert len(set(secrets.values())) == len(secrets), "two secrets are the same"

    before = password.read_bytes(), text
    again = bootstrap(tmp_path, env_dir)
    assert again.returncode == 0 and changed(again) == 0, again.stdout[-3000:]
    assert (password.read_bytes(), vault.read_bytes()) == before, "a second bootstrap changed the vault"


def test_a_vault_without_its_password_file_is_refused(tmp_path):
    """A fresh clone has the committed vault but not .vault_pass (ignored by
    git): bootstrap names the missing file and writes nothing."""
    env_dir = tmp_path / "inventories" / "test"
    vault = env_dir / "group_vars/all/vault.yml"
    vault.parent.mkdir(parents=True)
    vault.write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    run = bootstrap(tmp_path, env_dir)
    assert run.returncode != 0, run.stdout[-3000:]
    said = " ".join((run.stdout + run.stderr).split())
    assert f"{vault} exists but {env_dir / '.vault_pass'} does not" in said, said[-3000:]
    assert not (env_dir / ".vault_pass").exists(), "a password that cannot open the vault was written"
    assert vault.read_text() == "$ANSIBLE_VAULT;1.1;AES256\n6162\n"
