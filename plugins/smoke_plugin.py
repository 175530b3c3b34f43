"""A small Airflow plugin shipped by the playbooks.

The smoke DAG imports `signature` from here, so a successful run proves that
the plugins folder reached the worker hosts and is importable there; the
plugin class makes it show up in `airflow plugins` as well.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

PLUGIN_MARK = "smoke-plugin-v1"


def signature(hostname: str) -> str:
    """Return the mark of this plugin for one host, e.g. smoke-plugin-v1@worker1."""
    return f"{PLUGIN_MARK}@{hostname}"


class SmokePlugin(AirflowPlugin):
    """Registers `signature` as a template macro."""

    name = "smoke_plugin"
    macros = [signature]
