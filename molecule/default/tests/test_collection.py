"""The collection as its users run it: built, installed, called by FQCN.

`ansible-galaxy collection build` makes the tarball (only what runs goes
in), `ansible-galaxy collection install` puts it into a temporary
collections path, and a user's own playbook directory (its own ansible.cfg,
inventory, DAGs and plugins folders; no path into this repo, no role path)
runs `airflow_ops.airflow_vm.site` against the deployed test VM:

- without `airflow_dags_src`, or with it but without `airflow_plugins_src`,
  preflight refuses, naming the variable, and nothing changes (the defaults
  point next to the playbooks of the installed collection, which holds no
  DAGs and no plugins folder);
- with the user's folders (the same DAGs and plugins the scenario deployed),
  the run succeeds and changes nothing: the installed collection deploys
  exactly what the repo deploys.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import textwrap
from pathlib import Path

import pytest

from airflow_testlib import INVENTORY, ROOT, SHARED, assert_ok, assert_refused_unchanged, changed_count, playbook_tail

FQCN = "airflow_ops.airflow_vm"
# what a user runs, and what they must not get
SHIPPED = ["roles/airflow/tasks/main.yml", "roles/airflow/files/pack.py", "playbooks/site.yml", "meta/runtime.yml",
           "README.md", "LICENSE", "CHANGELOG.md", "changelogs/changelog.yaml", "plugins/action/managed_files.py",
           "plugins/action/host_state.py", "plugins/action/check_input.py", "plugins/filter/node_address.py"]
# (the example deployment's Airflow plugin too: plugins/ ships only the collection's Ansible plugins)
NOT_SHIPPED = re.compile(
    r"^(Makefile|ansible\.cfg|requirements\.(txt|yml)|\.ansible/|\.venv/|\.cache/|\.molecule-logs/|molecule/|scripts/"
    r"|bench/|inventories/|dags/|changelogs/fragments/|\.ci/|\.github/|\.config/|plugins/smoke_plugin\.py|plugins/\.airflowignore)"
)


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    """A user's playbook directory with the collection installed from the built tarball."""
    base = tmp_path_factory.mktemp("collection")
    built = subprocess.run(
        ["ansible-galaxy", "collection", "build", str(ROOT), "--output-path", str(base)],
        capture_output=True, text=True, check=False,
    )
    assert_ok(built)
    tarball = next(base.glob("airflow_ops-airflow_vm-*.tar.gz"))
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    missing = [name for name in SHIPPED if name not in names]
    assert not missing, f"{tarball.name} lacks {missing}"
    extra = sorted({name.split("/")[0] for name in names if NOT_SHIPPED.match(name)})
    assert not extra, f"{tarball.name} ships development files: {extra}"

    collections = base / "collections"
    # --no-deps: the dependencies come with the `ansible` package (no Galaxy here); --force: the checkout's own
    # link (.cache/collections, ansible.cfg) would make ansible-galaxy think it is installed already
    installed = subprocess.run(
        ["ansible-galaxy", "collection", "install", str(tarball), "-p", str(collections), "--no-deps", "--force"],
        capture_output=True, text=True, check=False,
    )
    assert_ok(installed)

    user = base / "ops-repo"
    (user / "playbooks").mkdir(parents=True)
    (user / "playbooks/site.yml").write_text(
        textwrap.dedent(
            f"""\
            ---
            - name: Our Airflow
              ansible.builtin.import_playbook: {FQCN}.site
            """
        )
    )
    (user / "ansible.cfg").write_text(
        textwrap.dedent(
            f"""\
            [defaults]
            collections_path = {collections}
            roles_path = {user}/roles
            inventory = {user}/inventory
            gathering = explicit
            interpreter_python = auto_silent
            [connection]
            pipelining = True
            """
        )
    )
    # the inventory of the test VM, copied (links followed): hosts and group_vars with the vault
    shutil.copytree(INVENTORY, user / "inventory", symlinks=False)
    shutil.copytree(ROOT / "dags", user / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    # a user's plugin folder holds their Airflow plugins (this repository's plugins/ also holds the collection's
    # Ansible plugins, in folders, which the roles do not ship from it either)
    (user / "plugins").mkdir()
    for path in (ROOT / "plugins").iterdir():
        if path.is_file():
            shutil.copy(path, user / "plugins" / path.name)
    return user


def user_run(user: Path, extra_vars: dict[str, str]) -> subprocess.CompletedProcess:
    """ansible-playbook as the user runs it: in their directory, with their
    ansible.cfg and nothing of this repo's Ansible settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(
        ANSIBLE_CONFIG=str(user / "ansible.cfg"),
        ANSIBLE_VAULT_PASSWORD_FILE=os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE", str(SHARED / ".vault_pass")),
        ANSIBLE_NOCOLOR="1",
    )
    args = ["ansible-playbook", "playbooks/site.yml"]
    for name, value in extra_vars.items():
        args += ["-e", f"{name}={value}"]
    return subprocess.run(args, cwd=user, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_without_a_dags_folder_preflight_names_it(user_dir):
    assert_refused_unchanged(user_run(user_dir, {}), "airflow_dags_src")


def test_without_a_plugins_folder_preflight_names_it(user_dir):
    # the default points at the installed collection's plugins/ (its Ansible plugins, not Airflow's)
    assert_refused_unchanged(user_run(user_dir, {"airflow_dags_src": f"{user_dir}/dags/"}), "airflow_plugins_src")


def test_the_installed_collection_deploys_what_the_repo_deploys(user_dir):
    result = user_run(
        user_dir,
        {"airflow_dags_src": f"{user_dir}/dags/", "airflow_plugins_src": f"{user_dir}/plugins/"},
    )
    assert_ok(result)
    assert re.search(r"^PLAY RECAP", result.stdout, re.MULTILINE), playbook_tail(result)
    assert changed_count(result) == 0, playbook_tail(result)
