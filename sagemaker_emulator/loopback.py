"""Whether a host or URL stays on this machine: the emulator and local mode only ever use loopback."""

from __future__ import annotations

import ipaddress
import socket
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
