"""Shared by the tests of the collection's action plugins: each test runs
ansible-playbook on this machine (connection local) against this checkout
as the collection airflow_ops.airflow_vm. ANSIBLE_PLAYBOOK=<path> picks the
ansible-core under test (default: the one on PATH)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# the unit tests' one runner (tests/unit/playrun.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from playrun import PYTHON, ROOT, run_playbook  # noqa: E402  pylint: disable=wrong-import-position


def link_collection(tmp_path: Path) -> None:
    """tmp_path/collections holds this checkout as airflow_ops.airflow_vm."""
    namespace = tmp_path / "collections/ansible_collections/airflow_ops"
    namespace.mkdir(parents=True)
    (namespace / "airflow_vm").symlink_to(ROOT)


def ansible_playbook(tmp_path: Path, playbook: Path, variables: dict, *options: str) -> subprocess.CompletedProcess:
    """Run `playbook` on localhost with the collection of link_collection and
    the roles under tmp_path/roles."""
    return run_playbook(
        tmp_path, playbook, "localhost,", "-c", "local", *options,
        extra_vars={"ansible_python_interpreter": PYTHON} | variables,
        env={
            "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections"),
            "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"),
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        },
    )
