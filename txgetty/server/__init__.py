"""
The server: L{Server}, an C{IService} that listens on endpoint descriptions
and makes a session per connection, WebSocket or UDP peer; and its listening
ports.

  - L{server <txgetty.server.server>}: L{Server}, L{serve};
  - L{ports <txgetty.server.ports>}: one listener per description, the
    session cap (C{maxSessions}) and the refusals beyond it.

The package re-exports these names without an C{__all__}, so that the API
reference documents them where users import them: the C{txgetty} facade.
"""

from .server import Server, serve

