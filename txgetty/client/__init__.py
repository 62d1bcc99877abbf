"""
The client: L{Client}, an C{IService} that keeps a pool of sessions open to
one server, each re-dialled from its own loss event with backoff.

  - L{pool <txgetty.client.pool>}: L{Client}, L{connect}: the pool, the
    choice of a session, the waiters;
  - L{slot <txgetty.client.slot>}: one connection slot and its life cycle
    (dial, connect timeout, backoff, giving up);
  - L{reconnect <txgetty.client.reconnect>}: L{ReconnectPolicy}, the
    backoff between attempts.

The package re-exports these names without an C{__all__}, so that the API
reference documents them where users import them: the C{txgetty} facade.
"""

from .pool import Client, connect
from .reconnect import ReconnectPolicy

