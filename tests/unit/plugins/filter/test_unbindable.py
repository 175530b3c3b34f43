"""airflow_ops.airflow_vm.unbindable: the IP addresses a host lacks are
named with the host's own; loopback, wildcards, names and Redis's optional
binds pass; without network facts nothing can be told."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "plugins/filter"))
from unbindable import FilterModule, unbindable  # noqa: E402

HOST = {"ansible_facts": {"all_ipv4_addresses": ["10.0.1.21", "172.17.0.2"], "all_ipv6_addresses": ["fe80::1%eth0", "2001:db8::5"]}}


def test_the_host_s_own_loopback_wildcards_and_names_pass():
    good = ["10.0.1.21", "172.17.0.2", "2001:DB8::5", "fe80::1", "127.0.0.1", "127.0.1.1", "::1", "0.0.0.0", "::", "*",
            "localhost", "db1.example.com", "-::1", "-203.0.113.9"]
    assert unbindable(good, HOST) == []


def test_an_address_the_host_lacks_is_named_with_the_host_s():
    assert unbindable(["127.0.0.1", "203.0.113.77"], HOST) == [
        "203.0.113.77: not an address of this host, so nothing could bind it (it has 10.0.1.21, 172.17.0.2, 2001:db8::5, fe80::1)"
    ]
    assert unbindable("2001:db8::6", HOST)[0].startswith("2001:db8::6: not an address of this host")


def test_brackets_are_refused():
    assert unbindable(["[2001:db8::5]"], HOST) == ["[2001:db8::5]: an IPv6 address goes without brackets"]


def test_without_network_facts_nothing_is_refused():
    assert unbindable(["203.0.113.77"], {"ansible_facts": {}}) == []


def test_not_a_host_s_variables():
    with pytest.raises(AnsibleFilterError, match="hostvars"):
        unbindable(["203.0.113.77"], "db1")


def test_registered_under_its_name():
    assert FilterModule().filters() == {"unbindable": unbindable}
