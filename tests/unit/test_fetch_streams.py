"""A root-only file reaches the controller streamed, never through slurp.

Ansible's fetch reads the file with the slurp module (base64, the whole
file in memory on both sides) whenever the task becomes, which every task
does on an inventory that logs in as a user with sudo. The airflow role's
`fetch` entry point (release archives, `make backup FETCH=yes`) copies the
file into a folder of the login user and fetches that without becoming.

Both runs below become (su, root to root: this machine has no sudo) with
molecule's trap on the library path (molecule/shared/library/slurp.py, a
slurp that fails): the plain fetch hits the trap, the entry point does not
and brings the file whole. The molecule scenarios run the same trap with a
login user that is not root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from playrun import PYTHON, ROOT, run_play

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("su"), reason="becomes with su as root")


def _run(tmp_path: Path, tasks: list) -> subprocess.CompletedProcess:
    return run_play(tmp_path, {"all": {"hosts": {"vm": {
        "ansible_connection": "local", "ansible_become": True, "ansible_become_method": "su",
        "ansible_python_interpreter": PYTHON}}}},
        [{"name": "Fetch", "hosts": "vm", "gather_facts": False, "tasks": tasks}],
        env={"ANSIBLE_LIBRARY": str(ROOT / "molecule/shared/library")})


@pytest.fixture
def root_only(tmp_path: Path) -> Path:
    src = tmp_path / "host" / "dump.bin"
    src.parent.mkdir(mode=0o700)
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    src.chmod(0o600)
    return src


def test_a_fetch_that_becomes_reads_through_slurp_and_the_trap_fails_it(tmp_path, root_only):
    run = _run(tmp_path, [{"name": "plain fetch", "ansible.builtin.fetch": {
        "src": str(root_only), "dest": str(tmp_path / "plain.bin"), "flat": True}}])
    assert run.returncode != 0, run.stdout
    assert "through slurp" in run.stdout, run.stdout + run.stderr
    assert not (tmp_path / "plain.bin").exists()


def test_the_fetch_entry_point_streams_the_file_whole_and_leaves_no_copy(tmp_path, root_only):
    dest = tmp_path / "controller" / "dump.bin"
    dest.parent.mkdir()
    scratch = tmp_path / "scratch"
    run = _run(tmp_path, [{"name": "entry point", "ansible.builtin.include_role": {"name": "airflow", "tasks_from": "fetch"},
                           "vars": {"airflow_fetch_src": str(root_only), "airflow_fetch_dest": str(dest)}},
                          # the folder this run made (not a glob of /var/tmp: another run may be fetching meanwhile)
                          {"name": "note the scratch folder", "ansible.builtin.copy": {
                              "content": "{{ __airflow_fetch_dir.path }}", "dest": str(scratch), "mode": "0600"}}])
    assert run.returncode == 0, run.stdout + run.stderr
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(root_only.read_bytes()).digest()
    folder = Path(scratch.read_text())
    assert folder.parent == Path("/var/tmp") and folder.name.startswith("airflow-fetch."), folder
    assert not folder.exists(), "the scratch folder was left behind"
