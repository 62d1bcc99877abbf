#!/usr/bin/env python3
"""The comparison peer: a minimal raw Twisted echo server for 4-byte length-prefixed frames.

A hand-written framer on a per-connection bytearray, one packet callback per frame, each
reply written with transport.writeSequence((header, payload)), TCP_NODELAY on.  It is the
least work a Twisted framework that hands every packet to a callback can do: the ceiling
txgetty is compared with.  --byteorder little speaks getty's hello framing.

  python peers/tw_raw.py --port 9000 [--host 127.0.0.1] [--byteorder big|little]
"""

from __future__ import annotations

from struct import Struct
from typing import Any

from peerlib import peer_args


def make_protocol(byteorder: str) -> type:
    """Return the echo Protocol class for the given byte order of the length header."""
    from twisted.internet.protocol import Protocol

    hdr = Struct("!I" if byteorder == "big" else "<I")
    unpack_from = hdr.unpack_from
    pack = hdr.pack

    class Echo(Protocol):
        """Echo every length-prefixed frame back."""

        def connectionMade(self) -> None:
            """Set TCP_NODELAY and an empty buffer."""
            self.transport.setTcpNoDelay(True)
            self.buf = bytearray()
            self.writeSequence = self.transport.writeSequence

        def dataReceived(self, data: bytes) -> None:
            """Cut every complete frame out of the buffer and hand it on."""
            buf = self.buf
            buf += data
            n = len(buf)
            off = 0
            while n - off >= 4:
                (length,) = unpack_from(buf, off)
                end = off + 4 + length
                if end > n:
                    break
                self.packetReceived(bytes(buf[off + 4:end]))
                off = end
            if off:
                del buf[:off]

        def packetReceived(self, payload: bytes) -> None:
            """Write the frame back."""
            self.writeSequence((pack(len(payload)), payload))

    return Echo


def main(argv: Any = None) -> None:
    """Parse the options, raise the fd limit, listen and run the reactor."""
    a = peer_args(__doc__, argv, byteorder=True)

    from twisted.internet import reactor
    from twisted.internet.protocol import Factory

    reactor.listenTCP(a.port, Factory.forProtocol(make_protocol(a.byteorder)), backlog=4096, interface=a.host)
    reactor.run()


if __name__ == "__main__":
    main()
