# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""airflow_ops.airflow_vm.node_address (docs: node_address.yml): the one
definition of the address other hosts reach a host at."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def node_address(host_vars) -> str:
    """`airflow_node_address` of the host, else its default IPv4 address."""
    try:
        given = host_vars.get("airflow_node_address")
    except AttributeError as error:
        raise AnsibleFilterError("node_address: give it a host's variables, e.g. hostvars[inventory_hostname]") from error
    if given:
        return str(given)
    address = ((host_vars.get("ansible_facts") or {}).get("default_ipv4") or {}).get("address")
    if not address:
        name = host_vars.get("inventory_hostname", "a host")
        raise AnsibleFilterError(
            f"{name}: no airflow_node_address and no default IPv4 address in its facts: set airflow_node_address "
            "(the address other hosts reach it at) in the inventory, or gather its facts first"
        )
    return str(address)


class FilterModule:
    def filters(self):
        return {"node_address": node_address}
