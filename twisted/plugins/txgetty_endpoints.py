"""
txgetty's endpoint-string plugin: txgetty's TLS listener for any Twisted
code, once txgetty is installed, under the prefix C{txgetty-tls}::

    from twisted.internet.endpoints import serverFromString
    endpoint = serverFromString(reactor, "txgetty-tls:8443:key=server.key:cert=server.crt")

The options are those of txgetty's C{tls:} listener (C{key}, C{cert},
C{chain}, C{clientCA}, C{interface}, C{backlog}) and Twisted's C{ssl:} names
(C{privateKey}, C{certKey}, C{extraCertChain}, C{sslmethod},
C{dhParameters}); see L{txgetty.transports.endpoints.tlsServerEndpoint}.

Not C{tls:}: Twisted registers that prefix itself (C{tls:PATH}, a directory
of PEM files served by server name), and of two plugins with one prefix the
one Twisted finds first wins.  Not C{ssl:}: Twisted's own parser comes
before any plugin.  Not C{udp:}: a datagram port is not a stream server
endpoint.  Not C{ws://}: a URL does not survive Twisted's split of a
description at colons.  docs/transports.md says more.

This module is imported by every plugin scan: it imports nothing of txgetty
(and no reactor) until a C{txgetty-tls:} description is parsed.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IStreamServerEndpoint, IStreamServerEndpointStringParser
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IPlugin, IStreamServerEndpointStringParser)
class TLSServerParser:
    """
    Parses C{txgetty-tls:PORT[:option=value]...} into an L{SSL4ServerEndpoint
    <twisted.internet.endpoints.SSL4ServerEndpoint>}.
    """

    prefix = "txgetty-tls"

    def parseStreamServer(self, reactor: Any, *args: object, **kwargs: object) -> IStreamServerEndpoint:
        """
        @param reactor: the reactor.
        @param args: the positional parts (the port).
        @param kwargs: the options.
        @return: the endpoint.
        @raise ValueError: the description is wrong (a
            L{txgetty.errors.ConfigError} saying what to change).
        """
        from txgetty.transports.endpoints import tlsServerEndpoint

        # Twisted hands the parts of the description over as text.
        parts, options = [str(a) for a in args], {k: str(v) for k, v in kwargs.items()}
        return tlsServerEndpoint(reactor, parts, options, description=_describe(parts, options))


def _describe(args: list[str], kwargs: dict[str, str]) -> str:
    """
    @param args: the positional parts of a description.
    @param kwargs: its options.
    @return: the description again, for messages.
    """
    return ":".join(["txgetty-tls", *args, *(f"{k}={v}" for k, v in kwargs.items())])


tlsServerParser = TLSServerParser()
