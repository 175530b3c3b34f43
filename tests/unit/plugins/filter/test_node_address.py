"""airflow_ops.airflow_vm.node_address: the inventory's airflow_node_address
first, else the default IPv4 of the gathered facts, else an error that names
the host and the variable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "plugins/filter"))
from node_address import FilterModule, node_address  # noqa: E402

FACTS = {"ansible_facts": {"default_ipv4": {"address": "192.0.2.10"}}}


def test_the_inventory_address_wins_over_the_facts():
    assert node_address({"airflow_node_address": "10.0.1.21", **FACTS}) == "10.0.1.21"


def test_the_default_ipv4_when_the_inventory_gives_none():
    assert node_address(FACTS) == "192.0.2.10"
    assert node_address({"airflow_node_address": "", **FACTS}) == "192.0.2.10"


def test_neither_names_the_host_and_the_variable():
    with pytest.raises(AnsibleFilterError, match=r"^db1: no airflow_node_address and no default IPv4 address"):
        node_address({"inventory_hostname": "db1", "ansible_facts": {}})


def test_registered_under_its_name():
    assert FilterModule().filters() == {"node_address": node_address}
