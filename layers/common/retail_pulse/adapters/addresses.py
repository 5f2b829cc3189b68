"""Which addresses a URL from a client may reach: public ones only (`safe_http`'s step 2)."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


def refusal_reason(address: IPAddress) -> str | None:
    """Why this address may not be contacted from a client's URL, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal_reason(embedded)
            return f"{reason} (embedded in {address})" if reason else None
    for check, name in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_private", "private"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_unspecified", "unspecified"),
    ):
        if getattr(address, check):
            return f"{name} address {address}"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return f"site-local address {address}"
    if not address.is_global:
        return f"non-public address {address}"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is where packets end up
    return None
