# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""airflow_ops.airflow_vm.unbindable (docs: unbindable.yml): the listen
addresses a host could not bind, read from its gathered facts, so that a
role's preflight refuses them before a service fails to start."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError

WILDCARDS = {"*", "0.0.0.0", "::", "-::*"}


def _own(host_vars) -> set | None:
    facts = host_vars.get("ansible_facts") or {}
    if "all_ipv4_addresses" not in facts:
        return None
    own = set()
    for address in list(facts.get("all_ipv4_addresses") or []) + list(facts.get("all_ipv6_addresses") or []):
        try:
            own.add(ipaddress.ip_address(str(address).split("%")[0]))
        except ValueError:
            continue
    return own


def unbindable(addresses, host_vars) -> list:
    """Each entry of `addresses` (a list, or one address) that is an IP
    address neither loopback, a wildcard nor one of the host's, as
    "ADDRESS: why". Names are left to the resolver; Redis's optional binds
    ("-ADDRESS") are skipped; [] when the host's network facts are missing."""
    if isinstance(addresses, str):
        addresses = [addresses]
    try:
        own = _own(host_vars)
    except AttributeError as error:
        raise AnsibleFilterError("unbindable: give it a host's variables, e.g. hostvars[inventory_hostname]") from error
    found = []
    for entry in addresses or []:
        entry = str(entry).strip()
        if not entry or entry in WILDCARDS or entry.startswith("-"):
            continue
        if "[" in entry or "]" in entry:
            found.append(f"{entry}: an IPv6 address goes without brackets")
            continue
        try:
            address = ipaddress.ip_address(entry.split("%")[0])
        except ValueError:
            continue
        if own is None or address.is_loopback or address.is_unspecified or address in own:
            continue
        theirs = ", ".join(sorted(str(a) for a in own)) or "none"
        found.append(f"{entry}: not an address of this host, so nothing could bind it (it has {theirs})")
    return found


class FilterModule:
    def filters(self):
        return {"unbindable": unbindable}
