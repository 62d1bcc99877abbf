"""
The server: L{Server}, an C{IService} that listens on endpoint descriptions
and makes a session per connection, WebSocket or UDP peer; and its listening
ports.

  - L{server <txgetty.server.server>}: L{Server}, L{serve};
  - L{ports <txgetty.server.ports>}: one listener per description, the
    session cap (C{maxSessions}) and the refusals beyond it.
"""

from .server import Server, serve

__all__ = ["Server", "serve"]
