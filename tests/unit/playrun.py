"""Run a scratch playbook on this machine for the unit tests: an inventory
and plays as data, written with an empty ansible.cfg to a test's tmp_path,
run by ANSIBLE_PLAYBOOK (the pinned or the lowest ansible-core: `make unit`
runs each) with this repo's roles; hosts reach this machine by connection
local with that ansible-core's own Python (PYTHON)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = os.environ.get("ANSIBLE_PLAYBOOK", "ansible-playbook")
PYTHON = str(Path(shutil.which(PLAYBOOK)).parent / "python") if shutil.which(PLAYBOOK) else sys.executable


def run_playbook(tmp_path: Path, playbook: Path, inventory: str, *options: str, extra_vars: dict | None = None,
                 env: dict | None = None, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """ansible-playbook `playbook` with inventory `inventory` (a path or a
    host list), an empty ansible.cfg in tmp_path, extra_vars passed with
    -e @tmp_path/vars.json, plain text output; env: more environment,
    unset: variables of this environment the run must not see."""
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    argv = [PLAYBOOK, "-i", inventory, *options]
    if extra_vars is not None:
        (tmp_path / "vars.json").write_text(json.dumps(extra_vars))
        argv += ["-e", f"@{tmp_path / 'vars.json'}"]
    environment = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"),
                       **(env or {}))
    for name in unset:
        environment.pop(name, None)
    return subprocess.run([*argv, str(playbook)], capture_output=True, text=True, env=environment, timeout=300, check=False)


def run_play(tmp_path: Path, inventory: dict, plays: list, extra_vars: dict | None = None,
             env: dict | None = None) -> subprocess.CompletedProcess:
    """inventory: hosts.yml as data; extra_vars: passed with -e @vars.json;
    env: more environment (ANSIBLE_ROLES_PATH is this repo's roles)."""
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays))
    return run_playbook(tmp_path, tmp_path / "play.yml", str(tmp_path / "hosts.yml"), extra_vars=extra_vars,
                        env={"ANSIBLE_ROLES_PATH": str(ROOT / "roles"), **(env or {})})
