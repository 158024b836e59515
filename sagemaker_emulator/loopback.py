"""Whether a host or URL stays on this machine: the emulator and local mode only ever use loopback, never a proxy."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from urllib.parse import urlparse


def is_loopback(host: str | None) -> bool:
    """True when every address ``host`` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    if not host:
        return False
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)


def is_loopback_url(url: str | None) -> bool:
    return is_loopback(urlparse(url or "").hostname)


def bypass_proxies(environ: Mapping[str, str], url: str) -> dict[str, str]:
    """``NO_PROXY`` and ``no_proxy`` holding what either held plus ``url``'s host, to update an environment with.

    A laptop behind a corporate proxy sets ``HTTP_PROXY``/``HTTPS_PROXY``, and HTTP clients (botocore among them)
    then send even loopback requests to the proxy, which answers them with a 502. Both spellings get the same list
    because clients differ in which they read first (Python prefers the lower case); ``*`` already bypasses all.
    """
    host = urlparse(url).hostname or ""
    entries = [
        entry.strip()
        for name in ("no_proxy", "NO_PROXY")
        for entry in environ.get(name, "").split(",")
        if entry.strip()
    ]
    if "*" not in entries:
        entries += [host, f"[{host}]"] if ":" in host else [host]
    merged = ",".join(dict.fromkeys(entries))
    return {"NO_PROXY": merged, "no_proxy": merged}
