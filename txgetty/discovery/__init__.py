"""
Service discovery through etcd v3: servers register the services they
expose under a lease, clients follow the servers of a service.

  - L{EtcdClient}: a non-blocking etcd v3 client (JSON gateway, Twisted's
    own HTTP agent); L{parseEtcdURL} reads C{etcd://HOST:PORT[/PREFIX]}.
  - L{ServiceRegistration}: an C{IService} that keeps a server's keys
    C{PREFIX/services/<Service>/<host:port>} alive under a lease.
  - L{ServiceWatcher}: an C{IService} that keeps the live list of the
    servers of one service and tells L{IServerListListener}s of changes.
  - L{txgetty.discovery.testing.MemoryEtcd}: etcd in memory, for tests.

See C{docs/discovery.md}.
"""

from __future__ import annotations

from ._watch import EtcdWatch, WatchEvent
from .errors import (
    EtcdError,
    EtcdLeaseNotFoundError,
    EtcdProtocolError,
    EtcdUnavailableError,
    EtcdWatchCanceledError,
)
from .etcd import DEFAULT_ETCD_PORT, DEFAULT_PREFIX, EtcdClient, parseEtcdURL
from ..interfaces import IEtcdClient, IEtcdWatch, IServerListListener
from .layout import ServerEntry, serverKey, servicePrefix
from .registration import ServiceRegistration
from .watcher import ServiceWatcher

__all__ = [
    "DEFAULT_ETCD_PORT",
    "DEFAULT_PREFIX",
    "EtcdClient",
    "EtcdError",
    "EtcdLeaseNotFoundError",
    "EtcdProtocolError",
    "EtcdUnavailableError",
    "EtcdWatch",
    "EtcdWatchCanceledError",
    "IEtcdClient",
    "IEtcdWatch",
    "IServerListListener",
    "ServerEntry",
    "ServiceRegistration",
    "ServiceWatcher",
    "WatchEvent",
    "parseEtcdURL",
    "serverKey",
    "servicePrefix",
]
