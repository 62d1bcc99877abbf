#!/usr/bin/env python3
"""The WebSocket comparison peer: a minimal raw autobahn echo server on Twisted.

onMessage -> sendMessage(payload, isBinary): every message goes back as it came.  autobahn
sets TCP_NODELAY itself (tcpNoDelay=True by default); no auto-ping, no compression
(permessage-deflate is only used when a client offers it; loadgen.py does not).  Based on
the team's harness peer (shared/bench/peers/tw_ws.py), with the same options.

  python peers/tw_ws.py --port 9000 [--host 127.0.0.1]
"""

from __future__ import annotations

from typing import Any

from peerlib import peer_args


def main(argv: Any = None) -> None:
    """Parse the options, raise the fd limit, listen and run the reactor."""
    a = peer_args(__doc__, argv)

    from autobahn.twisted.websocket import (
        WebSocketServerFactory,
        WebSocketServerProtocol,
    )
    from twisted.internet import reactor

    class Echo(WebSocketServerProtocol):
        """Send every message back."""

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            """Echo one message."""
            self.sendMessage(payload, isBinary)

    f = WebSocketServerFactory(f"ws://{a.host}:{a.port}")
    f.protocol = Echo
    f.setProtocolOptions(maxMessagePayloadSize=16 << 20, maxFramePayloadSize=16 << 20)
    reactor.listenTCP(a.port, f, backlog=4096, interface=a.host)
    reactor.run()


if __name__ == "__main__":
    main()
