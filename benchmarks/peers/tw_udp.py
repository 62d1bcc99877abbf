#!/usr/bin/env python3
"""The UDP comparison peer: a minimal raw Twisted UDP echo server.

One DatagramProtocol on one socket; datagramReceived -> transport.write(data, addr): the
least a Twisted UDP server can do per datagram (no per-peer state).

  python peers/tw_udp.py --port 9000 [--host 127.0.0.1]
"""

from __future__ import annotations

from typing import Any

from peerlib import peer_args


def main(argv: Any = None) -> None:
    """Parse the options, listen and run the reactor."""
    a = peer_args(__doc__, argv, raise_nofile=False)

    from twisted.internet import reactor
    from twisted.internet.protocol import DatagramProtocol

    class Echo(DatagramProtocol):
        """Send every datagram back to its sender."""

        def datagramReceived(self, data: bytes, addr: Any) -> None:
            """Echo one datagram."""
            self.transport.write(data, addr)

    reactor.listenUDP(a.port, Echo(), interface=a.host)
    reactor.run()


if __name__ == "__main__":
    main()
