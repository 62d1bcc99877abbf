"""
Endpoints from text.  Servers: Twisted's endpoint strings (C{tcp:}, C{unix:},
C{tcp6:}, C{systemd:} ...) plus a TLS form that takes the key, certificate,
chain and client-CA files::

    tls:PORT[:interface=ADDR][:backlog=N][:key=FILE][:cert=FILE][:chain=FILE][:clientCA=FILE]

(Twisted's own C{tls:PATH[:port=N]}, a directory of PEM files served by
server name, is recognised by its path and left to Twisted.)

C{ssl:} is accepted as a synonym that takes every option of Twisted's own
C{ssl:} too (C{privateKey}, C{certKey}, C{extraCertChain}, C{sslmethod},
C{dhParameters}), with Twisted's defaults (see L{tlsServerEndpoint}).  Files not given in the
string come from the L{TLSServerSettings} passed along (C{--tls-*} options).
Colons inside values are escaped with a backslash, as in Twisted
(C{interface=\\:\\:1}).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit
from typing import Any

from twisted.internet.endpoints import (
    HostnameEndpoint,
    SSL4ServerEndpoint,
    UNIXClientEndpoint,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint

from ..config import DEFAULT_LISTEN_BACKLOG, DEFAULT_MAX_MSG_LEN
from ..errors import ConfigError
from .addresses import checkPort
from .tls import TLSClientSettings, TLSServerSettings

_EXAMPLES = "tcp:8090:interface=127.0.0.1, tcp6:8090:interface=\\:\\:1, unix:/tmp/txgetty.sock, tls:8443"
#: The options of a TLS listener, txgetty's names and Twisted's C{ssl:} names,
#: to the L{TLSServerSettings} field each one sets.
_TLS_KEYS = {
    "key": "key", "privateKey": "key",
    "cert": "cert", "certKey": "cert",
    "chain": "chain", "extraCertChain": "chain",
    "clientCA": "clientCA",
    "sslmethod": "method",
    "dhParameters": "dhParameters",
}


#: The Twisted endpoint kinds whose first argument (or C{port=}) is a TCP
#: port, checked before Twisted parses them (it would accept 99999).
_TCP_KINDS = ("tcp", "tcp6")


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


def _tlsEndpoint(reactor: Any, description: str, settings: TLSServerSettings | None) -> IStreamServerEndpoint:
    """
    @param reactor: the reactor.
    @param description: a C{tls:} or C{ssl:} description.
    @param settings: the C{--tls-*} files, if any.
    @return: the TLS endpoint.
    @raise ConfigError: the description or the files are wrong.
    """
    kind, args, kw = splitDescription(description)
    if kind == "tls" and args and not args[0].isdigit() and not set(kw) & set(_TLS_KEYS):
        # Twisted's own tls:PATH[:port=N]: a directory of PEM files, one per
        # server name (SNI); txgetty's tls: starts with the port (or names
        # its files).
        return _twistedServer(reactor, description)
    return tlsServerEndpoint(reactor, args, kw, settings, description, twistedDefaults=kind == "ssl")


def tlsServerEndpoint(
    reactor: Any,
    args: list[str],
    kw: dict[str, str],
    settings: TLSServerSettings | None = None,
    description: str | None = None,
    twistedDefaults: bool = False,
) -> SSL4ServerEndpoint:
    """
    Make a TLS listening endpoint from the parts of a C{tls:} or C{ssl:}
    description (what follows the prefix, split at unescaped colons).

    The options are txgetty's (C{key}, C{cert}, C{chain}, C{clientCA}) and
    every one of Twisted's C{ssl:} server endpoint (C{privateKey},
    C{certKey}, C{extraCertChain}, C{sslmethod}, C{dhParameters}), with
    C{interface} and C{backlog}.  With C{twistedDefaults} (the C{ssl:}
    prefix) Twisted's defaults apply too: the key is C{server.pem} unless
    named, and a key file without a certificate option holds the
    certificate as well.

    @param reactor: the reactor.
    @param args: the positional parts: the port.
    @param kw: the options.
    @param settings: the C{--tls-*} files, for what the options do not name.
    @param description: the whole description, for messages.
    @param twistedDefaults: apply the defaults of Twisted's C{ssl:}.
    @return: the TLS endpoint.
    @raise ConfigError: the description or the files are wrong.
    """
    portNumber, options, backlogNumber, interface = _tlsListener(args, kw, settings, description, twistedDefaults)
    return SSL4ServerEndpoint(reactor, portNumber, options, backlog=backlogNumber, interface=interface)


def tlsServerOptions(description: str, settings: TLSServerSettings | None = None) -> Any:
    """
    The TLS side of a C{tls:}/C{ssl:} listener description, for a socket
    bound elsewhere (a worker's adopted listener).

    @param description: the description.
    @param settings: the C{--tls-*} files, for what it does not name.
    @return: its C{IOpenSSLServerConnectionCreator}.
    @raise ConfigError: the description or the files are wrong, or it is
        Twisted's C{tls:PATH} (a directory of certificates), which only
        Twisted's own endpoint serves.
    """
    kind, args, kw = splitDescription(description)
    if kind == "tls" and args and not args[0].isdigit() and not set(kw) & set(_TLS_KEYS):
        raise ConfigError(f"{description!r}: Twisted's tls:PATH listener cannot be served on an adopted socket; "
                          f"name the files with tls:PORT:key=FILE:cert=FILE (or --tls-key/--tls-cert)")
    return _tlsListener(args, kw, settings, description, kind == "ssl")[1]


def _tlsListener(args: list[str], kw: dict[str, str], settings: TLSServerSettings | None,
                 description: str | None, twistedDefaults: bool) -> tuple[int, Any, int, str]:
    """
    Read a TLS listener's parts (see L{tlsServerEndpoint}).

    @return: its port, TLS options, backlog and interface.
    @raise ConfigError: the description or the files are wrong.
    """
    kw = dict(kw)
    description = description or ":".join(["tls", *args, *(f"{k}={v}" for k, v in kw.items())])
    port = args[0] if args else kw.pop("port", None)
    interface = kw.pop("interface", "")
    # (Twisted's ssl: listens with 50; a Server gives every listener its backlog.)
    backlog = kw.pop("backlog", "50" if twistedDefaults else str(DEFAULT_LISTEN_BACKLOG))
    files: dict[str, str | None] = {
        "key": settings.key if settings else None, "cert": settings.cert if settings else None,
        "chain": settings.chain if settings else None, "clientCA": settings.clientCA if settings else None,
        "method": None, "dhParameters": None,
    }
    for name, value in kw.items():
        if name not in _TLS_KEYS:
            hint = ("; caCertsDir is a client option (for a server, clientCA=FILE names the CAs that "
                    "sign client certificates)" if name == "caCertsDir" else "")
            raise ConfigError(
                f"unknown option {name!r} in {description!r}; a TLS listener takes interface, backlog, "
                f"key (privateKey), cert (certKey), chain (extraCertChain), clientCA, sslmethod and "
                f"dhParameters{hint}"
            )
        files[_TLS_KEYS[name]] = value
    if twistedDefaults:
        files["key"] = files["key"] or "server.pem"
        files["cert"] = files["cert"] or files["key"]
    if not files["key"] or not files["cert"]:
        raise ConfigError(
            f"the TLS listener {description!r} needs a private key and a certificate: "
            f"give --tls-key and --tls-cert (or key=FILE:cert=FILE in the endpoint)"
        )
    portNumber = checkPort(port, description, listening=True)
    try:
        backlogNumber = int(backlog)
    except ValueError:
        raise ConfigError(f"the TLS listener {description!r} needs a numeric backlog, got {backlog!r}") from None
    options = TLSServerSettings(
        key=files["key"], cert=files["cert"], chain=files["chain"], clientCA=files["clientCA"],
        method=files["method"], dhParameters=files["dhParameters"],
    ).options()
    return portNumber, options, backlogNumber, interface


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
    kind, args, kw = splitDescription(description)
    if kind in _TCP_KINDS and (args or "port" in kw):
        checkPort(args[0] if args else kw["port"], description, listening=True)
    return _twistedServer(reactor, description)


def _twistedServer(reactor: Any, description: str) -> IStreamServerEndpoint:
    """
    @param reactor: the reactor.
    @param description: a Twisted endpoint string.
    @return: the endpoint Twisted makes of it.
    @raise ConfigError: Twisted refuses it; the message gives examples.
    """
    try:
        endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise ConfigError(f"bad listen endpoint {description!r} ({e}); examples: {_EXAMPLES}") from None
    return endpoint


_CLIENT_EXAMPLES = (
    "127.0.0.1:8090, tcp:HOST:PORT, tls:HOST:PORT[:caFile=F], unix:/tmp/txgetty.sock, "
    "udp:HOST:PORT, ws://HOST:PORT/PATH, wss://HOST:PORT/PATH"
)


def _webSocketEndpoint(reactor: Any, url: str, tls: TLSClientSettings | None, maxMsgLen: int) -> Any:
    """
    @param reactor: the reactor.
    @param url: a C{ws://} or C{wss://} URL.
    @param tls: TLS settings for C{wss}.
    @param maxMsgLen: the largest message accepted.
    @return: the WebSocket client endpoint.
    """
    from .websocket import WebSocketClientEndpoint

    secure, host, port, _, options = parseWebSocketURL(url, listening=False)
    deflate = options.pop("deflate", "no").lower() in _YES
    stream: Any = HostnameEndpoint(reactor, host, port)
    if secure:
        stream = wrapClientTLS(_tlsClientSettings(url, options, tls).creator(host), stream)
    elif options:
        raise ConfigError(f"unknown option {sorted(options)[0]!r} in {url!r}; a ws:// client takes deflate")
    return WebSocketClientEndpoint(reactor, url.split("?")[0], stream, maxMsgLen, deflate)
_TLS_CLIENT_KEYS = ("caFile", "cert", "key", "hostname", "insecure")
_YES = ("1", "yes", "true", "on")


def _hostPort(description: str, args: list[str], kw: dict[str, str]) -> tuple[str, int]:
    """
    @param description: the whole description, for messages.
    @param args: positional arguments (C{HOST}, C{PORT}).
    @param kw: keyword arguments (C{host=}, C{port=}).
    @return: the host and port.
    @raise ConfigError: one is missing or the port is not a number.
    """
    host = kw.pop("host", None) or (args[0] if args else None)
    port = kw.pop("port", None) or (args[1] if len(args) > 1 else None)
    if not host or not port:
        raise ConfigError(f"{description!r} needs a host and a port; examples: {_CLIENT_EXAMPLES}")
    return host, checkPort(port, description, listening=False)


def _label(kind: str, host: str, port: int) -> str:
    """
    @param kind: C{tcp} or C{tls}.
    @param host: a host name or address.
    @param port: the port.
    @return: e.g. C{tcp:127.0.0.1:8090} or C{tls:[::1]:8443}.
    """
    return f"{kind}:[{host}]:{port}" if ":" in host else f"{kind}:{host}:{port}"


def _tlsClientSettings(description: str, kw: dict[str, str], tls: TLSClientSettings | None) -> TLSClientSettings:
    """
    @param description: the description, for messages.
    @param kw: keyword arguments left after host and port.
    @param tls: defaults for what the description does not say.
    @return: the TLS settings for this endpoint.
    @raise ConfigError: an unknown keyword.
    """
    for name in kw:
        if name not in _TLS_CLIENT_KEYS:
            raise ConfigError(
                f"unknown option {name!r} in {description!r}; a TLS client takes "
                f"{', '.join(_TLS_CLIENT_KEYS)}"
            )
    base = tls or TLSClientSettings()
    return TLSClientSettings(
        caFile=kw.get("caFile", base.caFile), cert=kw.get("cert", base.cert),
        key=kw.get("key", base.key), hostname=kw.get("hostname", base.hostname),
        insecure=kw["insecure"].lower() in _YES if "insecure" in kw else base.insecure,
    )


def clientEndpoint(
    reactor: Any, description: str, tls: TLSClientSettings | None = None, maxMsgLen: int = DEFAULT_MAX_MSG_LEN
) -> tuple[IStreamClientEndpoint, str]:
    """
    Make a client endpoint from a description.

    Forms: C{HOST:PORT} (C{[::1]:PORT} for IPv6) and C{tcp:HOST:PORT} (TCP, names resolved, IPv4 or
    IPv6), C{tls:HOST:PORT} (alias C{ssl:}; verified against the platform's
    CAs or C{caFile=}, hostname checked; C{cert=}/C{key=} for a client
    certificate; C{insecure=yes} turns verification off), C{unix:PATH},
    C{udp:HOST:PORT} (connected UDP), C{ws://HOST:PORT/PATH} and
    C{wss://HOST:PORT/PATH} (C{?deflate=yes} offers compression; C{wss} is
    verified like C{tls:}).

    @param reactor: the reactor.
    @param description: the description.
    @param tls: TLS settings for C{tls:} and C{wss://} endpoints that do not
        say otherwise.
    @param maxMsgLen: the largest WebSocket message accepted.
    @return: the endpoint and a short label for logs.
    @raise ConfigError: the description is wrong; the message gives examples.
    """
    if description.startswith(("ws://", "wss://")):
        return _webSocketEndpoint(reactor, description, tls, maxMsgLen), description
    # [IPv6]:port -> escaped colons, as the endpoint grammar wants them.
    escaped = re.sub(r"\[([0-9A-Fa-f:.]+)\]", lambda m: m.group(1).replace(":", "\\:"), description)
    kind, args, kw = splitDescription(escaped)
    if kind not in ("tcp", "tls", "ssl", "unix") and len(args) == 1 and not kw and args[0].isdigit():
        kind, args = "tcp", [kind, args[0]]
    if kind == "tcp":
        host, port = _hostPort(description, args, kw)
        return HostnameEndpoint(reactor, host, port), _label("tcp", host, port)
    if kind in ("tls", "ssl"):
        host, port = _hostPort(description, args, kw)
        creator = _tlsClientSettings(description, kw, tls).creator(host)
        return wrapClientTLS(creator, HostnameEndpoint(reactor, host, port)), _label("tls", host, port)
    if kind == "udp":
        from .udp import UDPClientEndpoint

        host, port = _hostPort(description, args, kw)
        return UDPClientEndpoint(reactor, host, port), _label("udp", host, port)
    if kind == "unix":
        path = kw.pop("path", None) or (args[0] if args else None)
        if not path:
            raise ConfigError(f"{description!r} needs a socket path, e.g. unix:/tmp/txgetty.sock")
        return UNIXClientEndpoint(reactor, path), f"unix:{path}"
    raise ConfigError(f"cannot connect to {description!r}; examples: {_CLIENT_EXAMPLES}")


def parseWebSocketURL(description: str, listening: bool = True) -> tuple[bool, str, int, str, dict[str, str]]:
    """
    @param description: C{ws://HOST:PORT/PATH[?options]} or C{wss://...}.
    @param listening: a listener's URL (port 0 allowed), or C{False} for
        one to connect to.
    @return: secure, host, port, path and the options.
    @raise ConfigError: it is not such a URL.
    """
    parts = urlsplit(description)
    try:
        port = parts.port
    except ValueError:  # out of range, or not a number
        port = checkPort(parts.netloc.rpartition(":")[2], description, listening)
    if parts.scheme not in ("ws", "wss") or not parts.hostname or port is None:
        raise ConfigError(f"bad WebSocket URL {description!r}: expected ws://HOST:PORT/PATH or wss://HOST:PORT/PATH")
    port = checkPort(port, description, listening)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return parts.scheme == "wss", parts.hostname, port, parts.path or "/", options
