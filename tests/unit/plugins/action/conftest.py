"""Shared by the tests of the collection's action plugins: each test runs
ansible-playbook on this machine (connection local) against this checkout
as the collection airflow_ops.airflow_vm. ANSIBLE_PLAYBOOK=<path> picks the
ansible-core under test (default: the one on PATH)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
PLAYBOOK = os.environ.get("ANSIBLE_PLAYBOOK", "ansible-playbook")
# the modules run with the Python of the ansible-playbook under test
PYTHON = str(Path(shutil.which(PLAYBOOK) or PLAYBOOK).parent / "python") if shutil.which(PLAYBOOK) else sys.executable


def link_collection(tmp_path: Path) -> None:
    """tmp_path/collections holds this checkout as airflow_ops.airflow_vm."""
    namespace = tmp_path / "collections/ansible_collections/airflow_ops"
    namespace.mkdir(parents=True)
    (namespace / "airflow_vm").symlink_to(ROOT)


def ansible_playbook(tmp_path: Path, playbook: Path, variables: dict, *options: str) -> subprocess.CompletedProcess:
    """Run `playbook` on localhost with the collection of link_collection and
    the roles under tmp_path/roles."""
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"),
        ANSIBLE_ROLES_PATH=str(tmp_path / "roles"),
        ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",  # make exports it true (colored logs); these tests read the text
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
    )
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    return subprocess.run(
        [PLAYBOOK, "-i", "localhost,", "-c", "local", str(playbook), "-e",
         json.dumps({"ansible_python_interpreter": PYTHON} | variables), *options],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
