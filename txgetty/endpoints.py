"""
Listening endpoints from text: Twisted's endpoint strings (C{tcp:}, C{unix:},
C{tcp6:}, C{systemd:} ...) plus a TLS form that takes the key, certificate,
chain and client-CA files::

    tls:PORT[:interface=ADDR][:backlog=N][:key=FILE][:cert=FILE][:chain=FILE][:clientCA=FILE]

C{ssl:} is accepted as a synonym, with Twisted's names C{privateKey},
C{certKey} and C{extraCertChain} for the files.  Files not given in the
string come from the L{TLSServerSettings} passed along (C{--tls-*} options).
Colons inside values are escaped with a backslash, as in Twisted
(C{interface=\\:\\:1}).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint

from .errors import ConfigError
from .tls import TLSServerSettings

_EXAMPLES = "tcp:8090:interface=127.0.0.1, tcp6:8090:interface=\\:\\:1, unix:/tmp/txgetty.sock, tls:8443"
_TLS_KEYS = {
    "key": "key", "privateKey": "key",
    "cert": "cert", "certKey": "cert",
    "chain": "chain", "extraCertChain": "chain",
    "clientCA": "clientCA",
}


def splitDescription(description: str) -> tuple[str, list[str], dict[str, str]]:
    """
    Split an endpoint description at unescaped colons.

    @param description: e.g. C{tls:8443:interface=127.0.0.1}.
    @return: the kind, the positional arguments and the keyword arguments.
    """
    parts: list[str] = []
    current: list[str] = []
    chars = iter(description)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, ""))
        elif ch == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    args: list[str] = []
    kw: dict[str, str] = {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if eq:
            kw[key] = value
        else:
            args.append(part)
    return parts[0], args, kw


def isTLSDescription(description: str) -> bool:
    """
    @param description: an endpoint description.
    @return: whether it is a txgetty TLS listener (C{tls:} or C{ssl:}).
    """
    return splitDescription(description)[0] in ("tls", "ssl")


def _tlsEndpoint(reactor: Any, description: str, settings: TLSServerSettings | None) -> SSL4ServerEndpoint:
    """
    @param reactor: the reactor.
    @param description: a C{tls:} or C{ssl:} description.
    @param settings: the C{--tls-*} files, if any.
    @return: the TLS endpoint.
    @raise ConfigError: the description or the files are wrong.
    """
    _, args, kw = splitDescription(description)
    port = args[0] if args else kw.pop("port", None)
    interface = kw.pop("interface", "")
    backlog = kw.pop("backlog", "50")
    files = {
        "key": settings and settings.key, "cert": settings and settings.cert,
        "chain": settings and settings.chain, "clientCA": settings and settings.clientCA,
    }
    for name, value in kw.items():
        if name not in _TLS_KEYS:
            raise ConfigError(
                f"unknown option {name!r} in {description!r}; a TLS listener takes "
                f"interface, backlog, key, cert, chain and clientCA"
            )
        files[_TLS_KEYS[name]] = value
    if not files["key"] or not files["cert"]:
        raise ConfigError(
            f"the TLS listener {description!r} needs a private key and a certificate: "
            f"give --tls-key and --tls-cert (or key=FILE:cert=FILE in the endpoint)"
        )
    try:
        portNumber, backlogNumber = int(port or ""), int(backlog)
    except ValueError:
        raise ConfigError(f"the TLS listener {description!r} needs a numeric port and backlog") from None
    options = TLSServerSettings(**files).options()
    return SSL4ServerEndpoint(reactor, portNumber, options, backlog=backlogNumber, interface=interface)


def serverEndpoint(
    reactor: Any, description: str, tls: TLSServerSettings | None = None
) -> IStreamServerEndpoint:
    """
    Make a listening endpoint from a description.

    @param reactor: the reactor.
    @param description: a Twisted endpoint string, or a C{tls:}/C{ssl:}
        description as above.
    @param tls: files for TLS listeners that do not name their own.
    @return: the endpoint.
    @raise ConfigError: the description is wrong; the message gives examples.
    """
    if isTLSDescription(description):
        return _tlsEndpoint(reactor, description, tls)
    try:
        return serverFromString(reactor, description)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise ConfigError(f"bad listen endpoint {description!r} ({e}); examples: {_EXAMPLES}") from None
