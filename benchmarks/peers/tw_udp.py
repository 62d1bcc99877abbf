#!/usr/bin/env python3
"""The UDP comparison peer: a minimal raw Twisted UDP echo server.

One DatagramProtocol on one socket; datagramReceived -> transport.write(data, addr): the
least a Twisted UDP server can do per datagram (no per-peer state).

  python peers/tw_udp.py --port 9000 [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
from typing import Any


def main(argv: Any = None) -> None:
    """Parse the options, listen and run the reactor."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args(argv)

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
