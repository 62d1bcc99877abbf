#!/usr/bin/env python3
"""The WebSocket comparison peer: a minimal raw autobahn echo server on Twisted.

onMessage -> sendMessage(payload, isBinary): every message goes back as it came.  autobahn
sets TCP_NODELAY itself (tcpNoDelay=True by default); no auto-ping, no compression
(permessage-deflate is only used when a client offers it; loadgen.py does not).  Based on
the team's harness peer (shared/bench/peers/tw_ws.py), with the same options.

  python peers/tw_ws.py --port 9000 [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import resource
from typing import Any


def main(argv: Any = None) -> None:
    """Parse the options, raise the fd limit, listen and run the reactor."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

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
