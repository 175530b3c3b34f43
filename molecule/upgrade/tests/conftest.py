"""Fixtures shared by every scenario live in molecule/shared/tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "tests"))

from airflow_testlib import api, api_hosts, groups, hosts, secrets  # noqa: E402,F401
