"""Addresses, spelled as in Rust's ``netsock::Addr``.

=================================  =============================================
input                              meaning
=================================  =============================================
``3000``, ``"3000"``               TCP on 127.0.0.1 port 3000 (loopback only)
``"host:3000"``, ``"[::1]:3000"``  TCP on that host and port
``"/tmp/app.sock"``, ``"./a.sock"``  a Unix domain socket (any string with a ``/``)
``"tcp://host:3000"``              TCP, explicitly
``"unix://app.sock"``              a Unix domain socket, explicitly
a ``pathlib.Path``                 a Unix domain socket
=================================  =============================================

>>> parse("tcp://127.0.0.1:0")
Addr(kind='tcp', host='127.0.0.1', port=0, path='')
>>> str(parse("/tmp/x.sock"))
'/tmp/x.sock'
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import InvalidAddr

__all__ = ["Addr", "parse", "DEFAULT_HOST"]

DEFAULT_HOST = "127.0.0.1"
"""The host a bare port means."""


@dataclass(frozen=True)
class Addr:
    """A TCP host and port, or a Unix socket path."""

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "unix":
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def _port(text: str, original: object) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise InvalidAddr(original, f"{text!r} is not a port number (0 to 65535)")
    return int(text)


def _host_port(text: str, original: object) -> Addr:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise InvalidAddr(original, "an IPv6 address is written [addr]:port")
        return Addr("tcp", host=host, port=_port(rest[1:], original))
    host, sep, port = text.rpartition(":")
    if not sep:
        raise InvalidAddr(original, "no port, and not a path (a Unix socket path has a '/')")
    if not host:
        raise InvalidAddr(original, "no host before the port")
    return Addr("tcp", host=host, port=_port(port, original))


def parse(addr: str | int | os.PathLike[str] | Addr) -> Addr:
    """The :class:`Addr` a user wrote; :class:`~netsock.InvalidAddr` if it
    is none."""
    if isinstance(addr, Addr):
        return addr
    if isinstance(addr, bool):
        raise InvalidAddr(addr, "not an address")
    if isinstance(addr, int):
        return Addr("tcp", host=DEFAULT_HOST, port=_port(str(addr), addr))
    if isinstance(addr, os.PathLike):
        return Addr("unix", path=os.fspath(addr))
    if not isinstance(addr, str):
        raise InvalidAddr(addr, "an address is a string, a port number or a path")
    text = addr.strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        match scheme:
            case "tcp":
                return _host_port(rest, addr)
            case "unix":
                if not rest:
                    raise InvalidAddr(addr, "no path after unix://")
                return Addr("unix", path=rest)
            case "tls":
                raise InvalidAddr(addr, "TLS is not supported by this Python client yet")
            case _:
                raise InvalidAddr(addr, f"unknown transport {scheme!r} (tcp:// or unix://)")
    if "/" in text:
        return Addr("unix", path=text)
    if text.isdigit():
        return Addr("tcp", host=DEFAULT_HOST, port=_port(text, addr))
    return _host_port(text, addr)
