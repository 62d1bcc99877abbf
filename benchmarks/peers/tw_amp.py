#!/usr/bin/env python3
"""The RPC comparison peer: a Twisted AMP echo server.

One command, ``Echo``, with one argument ``data`` (amp.String: bytes) answered with
``{"data": data}`` by an ``@Echo.responder``: the server side of ``callRemote``, the least an
RPC on stock Twisted does per call (parse the box, dispatch the command, build and write the
answer box).  TCP_NODELAY on.  The same server as the team's harness peer
(shared/bench/peers/tw_amp.py), with the command line of the other peers here.

  python peers/tw_amp.py --port 9000 [--host 127.0.0.1]
"""

from __future__ import annotations

from typing import Any

from peerlib import peer_args


def main(argv: Any = None) -> None:
    """Parse the options, raise the fd limit, listen and run the reactor."""
    a = peer_args(__doc__, argv)

    from twisted.internet import reactor
    from twisted.internet.protocol import Factory
    from twisted.protocols import amp

    class Echo(amp.Command):
        """Echo(data: bytes) -> data."""

        arguments = [(b"data", amp.String())]
        response = [(b"data", amp.String())]

    class EchoServer(amp.AMP):
        """Answer every Echo call with its argument."""

        def connectionMade(self) -> None:
            """Turn Nagle's algorithm off, as every peer does."""
            super().connectionMade()
            self.transport.setTcpNoDelay(True)

        @Echo.responder
        def echo(self, data: bytes) -> dict[str, bytes]:
            """Answer with the argument."""
            return {"data": data}

    reactor.listenTCP(a.port, Factory.forProtocol(EchoServer), backlog=4096, interface=a.host)
    reactor.run()


if __name__ == "__main__":
    main()
