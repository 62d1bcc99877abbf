"""
The registry's key layout and value format, shared by the servers that
register and the clients that watch.

One key per (service, server address)::

    PREFIX/services/<Service>/<host:port>

holding a JSON object::

    {"address": "host:port", "weight": 1, "metadata": {...}, "started": 1767225600}

C{started} is the server's start time in whole Unix seconds; C{weight} is a
positive integer for weighted balancing; C{metadata} is free-form JSON
(string keys).  Each key is attached to the server's lease, so it disappears
when the server stops or stops renewing the lease.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..errors import ConfigError

__all__ = ["ServerEntry", "checkAddress", "checkServiceName", "serverKey", "serverKeys", "servicePrefix"]


def _normalPrefix(prefix: str) -> str:
    """
    @param prefix: a registry prefix (C{/txgetty}).
    @return: it without a trailing slash.
    @raise ConfigError: it is empty or not text.
    """
    if not isinstance(prefix, str) or not prefix.strip("/"):
        raise ConfigError(f"the registry prefix must be a non-empty path such as '/txgetty', got {prefix!r}")
    return prefix.rstrip("/")


def checkServiceName(name: Any) -> str:
    """
    @param name: a service name as registered.
    @return: it.
    @raise ConfigError: it is empty, not text, or holds C{/} or whitespace
        (which would break the key layout).
    """
    if not isinstance(name, str) or not name or "/" in name or any(c.isspace() for c in name):
        raise ConfigError(f"a registered service name must be non-empty text without '/' or spaces, got {name!r}")
    return name


def checkAddress(address: Any) -> str:
    """
    @param address: a server address as registered, C{host:port} (IPv6 in
        brackets: C{[::1]:8091}).
    @return: it.
    @raise ConfigError: it is not of that form.
    """
    if not isinstance(address, str) or "/" in address or any(c.isspace() for c in address):
        raise ConfigError(f"a registered address must be host:port, got {address!r}")
    host, sep, port = address.rpartition(":")
    if not sep or not host or host in ("[]",) or (":" in host and not (host.startswith("[") and host.endswith("]"))):
        raise ConfigError(f"a registered address must be host:port (IPv6 as [addr]:port), got {address!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"the port of the registered address {address!r} must be a number 1-65535")
    return address


def servicePrefix(prefix: str, service: str) -> str:
    """
    @param prefix: the registry prefix.
    @param service: a service name.
    @return: the key prefix of that service's servers,
        C{PREFIX/services/<Service>/} (with the slash, so that C{Echo} does
        not match C{EchoV2}).
    """
    return f"{_normalPrefix(prefix)}/services/{checkServiceName(service)}/"


def serverKey(prefix: str, service: str, address: str) -> str:
    """
    @param prefix: the registry prefix.
    @param service: a service name.
    @param address: a server address, C{host:port}.
    @return: its key, C{PREFIX/services/<Service>/<host:port>}.
    """
    return servicePrefix(prefix, service) + checkAddress(address)


@dataclass(frozen=True)
class ServerEntry:
    """
    One registered server of a service.

    @ivar address: where it listens, C{host:port}.
    @ivar weight: its share in weighted balancing (>= 1).
    @ivar metadata: free-form data it published.
    @ivar started: when it started, in whole Unix seconds.
    """

    address: str
    weight: int = 1
    metadata: Mapping[str, Any] = field(default_factory=dict)
    started: int = 0

    def __post_init__(self) -> None:
        """
        Check the values.

        @raise ConfigError: one cannot be registered; the message names it.
        """
        checkAddress(self.address)
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 1:
            raise ConfigError(f"the weight of {self.address} must be a whole number >= 1, got {self.weight!r}")
        if not isinstance(self.metadata, Mapping):
            raise ConfigError(f"the metadata of {self.address} must be a mapping, got {self.metadata!r}")
        try:
            json.dumps(dict(self.metadata), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"the metadata of {self.address} must be JSON (string keys): {e}") from None
        if isinstance(self.started, bool) or not isinstance(self.started, int) or self.started < 0:
            raise ConfigError(f"started of {self.address} must be whole Unix seconds, got {self.started!r}")

    def __hash__(self) -> int:
        return hash((self.address, self.weight, self.started))

    def toJSON(self) -> bytes:
        """
        @return: the value stored under the server's key.
        """
        value = {"address": self.address, "weight": self.weight, "metadata": dict(self.metadata), "started": self.started}
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")

    @classmethod
    def fromJSON(cls, value: bytes) -> ServerEntry:
        """
        Read a stored value; missing optional fields take their defaults
        (weight 1, no metadata, started 0).

        @param value: the bytes of a key.
        @return: the entry.
        @raise ValueError: the value is not such an object (the message
            says why).
        """
        try:
            data = json.loads(value)
        except ValueError as e:
            raise ValueError(f"not JSON ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("address"), str):
            raise ValueError("not a JSON object with an \"address\" string")
        started = data.get("started", 0)
        if isinstance(started, float) and math.isfinite(started):
            started = int(started)
        try:
            return cls(data["address"], data.get("weight", 1), data.get("metadata") or {}, started)
        except ConfigError as e:
            raise ValueError(str(e)) from None


def serverKeys(prefix: str, services: Sequence[str], address: str) -> list[str]:
    """
    @param prefix: the registry prefix.
    @param services: service names.
    @param address: the server's address.
    @return: the keys a server registers, one per service.
    """
    return [serverKey(prefix, service, address) for service in services]
