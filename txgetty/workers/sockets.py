"""
The listening sockets of a worker supervisor: what to bind for each
listener description (L{ListenSpec}), and binding it once (L{openListener}).

A stream listener (C{tcp:}, C{tcp6:}, C{tls:}/C{ssl:}, C{unix:}, C{ws://},
C{wss://}, C{systemd:}) is ONE listening socket, accepted from by the
supervisor, which hands every connection to a worker.  A datagram listener
(C{udp:}) is one socket per worker slot, all bound to the same address with
C{SO_REUSEPORT}: the kernel hashes each peer's address to one of them, so a
peer keeps talking to one worker (a UDP session lives in one process).  Port
0 is resolved once: the first socket of a group is bound to port 0, the
others to the port it got.

Only what the socket needs is read here (address, port, backlog, UNIX
mode, systemd descriptor); the worker side reads the rest of a
description (TLS files, WebSocket paths, C{maxSessions}, C{maxPeers}).
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from twisted.internet.error import CannotListenError

from ..config import DEFAULT_LISTEN_BACKLOG, checkListenerSetting
from ..transports.endpoints import parseWebSocketURL, splitDescription
from ..errors import ConfigError

#: Listener kinds bound as one stream socket, by description prefix.
STREAM_KINDS = ("tcp", "tcp6", "tls", "ssl", "unix", "systemd")
#: The address families a supervisor binds, by name.
FAMILIES = {"INET": socket.AF_INET, "INET6": socket.AF_INET6, "UNIX": socket.AF_UNIX}


@dataclass(frozen=True)
class ListenSpec:
    """
    What the supervisor binds for one listener.

    @ivar description: the listener as given (the worker parses it again).
    @ivar kind: C{"stream"} or C{"datagram"}.
    @ivar family: C{"INET"}, C{"INET6"} or C{"UNIX"}.
    @ivar host: the interface (C{""}: every address), or the UNIX path.
    @ivar port: the port (0: the kernel picks one); 0 for UNIX.
    @ivar backlog: the listen backlog (stream only).
    @ivar mode: the UNIX socket file's mode.
    @ivar systemd: the index (C{int}) or name (C{str}) of a socket passed by
        systemd (C{LISTEN_FDS}), or C{None}.
    """

    description: str
    kind: str
    family: str
    host: str
    port: int = 0
    backlog: int = DEFAULT_LISTEN_BACKLOG
    mode: int = 0o666
    systemd: int | str | None = None

    @property
    def key(self) -> tuple:
        """
        What two descriptions must share to be served by one socket (the
        WebSocket URLs of one port); unique for port 0.
        """
        if self.port == 0 or self.kind == "datagram" or self.systemd is not None:
            return (self.description,)
        return (self.kind, self.family, self.host, self.port)


def _inetFamily(host: str, default: str = "INET") -> str:
    """
    @param host: an interface.
    @return: C{"INET6"} for an IPv6 address, else C{default}.
    """
    return "INET6" if ":" in host else default


def _backlog(kw: Mapping[str, str], description: str, default: int) -> int:
    """
    @return: the C{backlog=} of a description, or C{default}.
    @raise ConfigError: it is not a valid backlog.
    """
    if "backlog" in kw:
        return checkListenerSetting("backlog", kw["backlog"], description)
    return default


def _port(text: str, description: str) -> int:
    """
    @return: the port number of a description.
    @raise ConfigError: it is not one.
    """
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"bad port {text!r} in {description!r}: give a number from 0 to 65535")
    return port


def listenSpec(description: str, backlog: int = DEFAULT_LISTEN_BACKLOG) -> ListenSpec:
    """
    Read what to bind for a listener description.

    @param description: as C{--listen} / C{--rpc-listen} take it.
    @param backlog: the backlog of a stream listener that names none.
    @return: its spec.
    @raise ConfigError: the description cannot be bound by a supervisor
        (the message says which kinds can).
    """
    if description.startswith(("ws://", "wss://")):
        _, host, port, _, options = parseWebSocketURL(description)
        host = "" if host in ("0.0.0.0", "") else host
        return ListenSpec(description, "stream", _inetFamily(host), host, port, _backlog(options, description, backlog))
    kind, args, kw = splitDescription(description)
    if kind == "udp":
        host = kw.get("interface", "")
        return ListenSpec(description, "datagram", _inetFamily(host), host,
                          _port(args[0] if args else kw.get("port", ""), description))
    if kind in ("tcp", "tcp6", "tls", "ssl"):
        host = kw.get("interface", "::" if kind == "tcp6" else "")
        family = "INET6" if kind == "tcp6" else _inetFamily(host)
        port = _port(args[0] if args else kw.get("port", ""), description)
        return ListenSpec(description, "stream", family, host, port, _backlog(kw, description, backlog))
    if kind == "unix":
        path = args[0] if args else kw.get("address", "")
        if not path:
            raise ConfigError(f"{description!r} names no socket path: give unix:PATH")
        mode = int(kw.get("mode", "666"), 8)
        return ListenSpec(description, "stream", "UNIX", path, 0, _backlog(kw, description, backlog), mode)
    if kind == "systemd":
        return _systemdSpec(description, kw)
    raise ConfigError(
        f"{description!r} cannot be served by workers: the supervisor binds tcp:, tcp6:, tls:, ssl:, unix:, "
        f"udp:, ws://, wss:// and systemd: listeners (run without --workers for other endpoint kinds)"
    )


def _systemdSpec(description: str, kw: Mapping[str, str]) -> ListenSpec:
    """
    @return: the spec of a C{systemd:domain=...:index=N} (or C{name=})
        listener.
    @raise ConfigError: the domain, or the index/name choice, is wrong.
    """
    domain = kw.get("domain", "")
    if domain not in FAMILIES:
        raise ConfigError(f"{description!r}: domain must be INET, INET6 or UNIX, got {domain!r}")
    if ("index" in kw) == ("name" in kw):
        raise ConfigError(f"{description!r}: give exactly one of index=N and name=NAME")
    which: int | str = kw["name"] if "name" in kw else _port(kw["index"], description)
    return ListenSpec(description, "stream", domain, "", 0, systemd=which)


def listenSpecs(descriptions: Sequence[str], backlog: int = DEFAULT_LISTEN_BACKLOG) -> list[ListenSpec]:
    """
    @param descriptions: listener descriptions.
    @param backlog: as for L{listenSpec}.
    @return: their specs (WebSocket URLs of one port: one spec, the first).
    @raise ConfigError: a description cannot be bound.
    """
    specs: dict[tuple, ListenSpec] = {}
    for description in descriptions:
        spec = listenSpec(description, backlog)
        specs.setdefault(spec.key, spec)
    return list(specs.values())


@dataclass
class OpenedListener:
    """
    The socket(s) bound for one L{ListenSpec}.

    @ivar spec: what was bound.
    @ivar sockets: one listening socket (stream), or one per worker slot
        (datagram).
    @ivar address: the bound address: C{(host, port)}, or the UNIX path.
    @ivar unlinkOnClose: the UNIX socket file to remove on L{close}.
    """

    spec: ListenSpec
    sockets: list[socket.socket]
    address: tuple[str, int] | str
    unlinkOnClose: str | None = field(default=None)

    def close(self) -> None:
        """
        Close every socket (and remove the UNIX socket file made here).
        """
        for sock in self.sockets:
            sock.close()
        self.sockets = []
        if self.unlinkOnClose is not None:
            try:
                os.unlink(self.unlinkOnClose)
            except OSError:
                pass
            self.unlinkOnClose = None


def _cannotListen(spec: ListenSpec, error: OSError) -> CannotListenError:
    """
    @return: the error twistd's listen-error reporting understands.
    """
    port: int | str = spec.host if spec.family == "UNIX" else spec.port
    interface = None if spec.family == "UNIX" else spec.host
    return CannotListenError(interface, port, error)


def _bind(spec: ListenSpec, port: int, reusePort: bool) -> socket.socket:
    """
    @return: a non-blocking socket of the spec bound to C{port} (listening,
        for a stream spec).
    @raise CannotListenError: the bind or listen failed.
    """
    family = FAMILIES[spec.family]
    kind = socket.SOCK_STREAM if spec.kind == "stream" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        if family != socket.AF_UNIX and kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reusePort:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(spec.host if family == socket.AF_UNIX else (spec.host, port))
        if family == socket.AF_UNIX:
            os.chmod(spec.host, spec.mode)
        if kind == socket.SOCK_STREAM:
            sock.listen(spec.backlog)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise _cannotListen(spec, e) from None
    return sock


def _boundAddress(sock: socket.socket) -> tuple[str, int] | str:
    """
    @return: a socket's bound address as C{(host, port)} or a UNIX path.
    """
    name = sock.getsockname()
    if isinstance(name, tuple):
        return (name[0], name[1])
    return name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name


def systemdDescriptor(spec: ListenSpec) -> int:
    """
    Find the socket systemd passed for a C{systemd:} listener, as Twisted's
    C{systemd:} endpoint does (Twisted reads C{LISTEN_FDS} once, when
    L{twisted.internet.endpoints} is imported, and removes it from the
    environment).

    @param spec: a spec with C{systemd} set.
    @return: the descriptor.
    @raise ConfigError: systemd passed no such socket.
    """
    from twisted.internet.endpoints import serverFromString

    try:
        return int(serverFromString(None, spec.description).fileno)
    except (KeyError, IndexError, ValueError):
        which = f"named {spec.systemd!r}" if isinstance(spec.systemd, str) else f"number {spec.systemd}"
        raise ConfigError(
            f"{spec.description!r}: systemd passed no socket {which}; check the .socket unit "
            f"(FileDescriptorName=) and run twistd in the foreground (-n), as the process systemd started"
        ) from None


def _systemdSocket(spec: ListenSpec, find: Callable[[ListenSpec], int]) -> socket.socket:
    """
    @return: the listening socket systemd passed for the spec.
    @raise ConfigError: there is no such socket.
    """
    sock = socket.socket(FAMILIES[spec.family], socket.SOCK_STREAM, fileno=find(spec))
    sock.setblocking(False)
    return sock


def openListener(spec: ListenSpec, slots: int,
                 systemd: Callable[[ListenSpec], int] = systemdDescriptor) -> OpenedListener:
    """
    Bind a listener once for a supervisor of C{slots} workers.

    @param spec: what to bind.
    @param slots: the number of worker slots (datagram listeners get one
        socket each).
    @param systemd: finds the descriptor of a C{systemd:} listener.
    @return: the bound socket(s).
    @raise CannotListenError: the address is taken, not local, or denied.
    @raise ConfigError: a systemd socket is missing.
    """
    if spec.systemd is not None:
        sock = _systemdSocket(spec, systemd)
        return OpenedListener(spec, [sock], _boundAddress(sock))
    if spec.kind == "stream":
        _refuseLiveUnixSocket(spec)
        sock = _bind(spec, spec.port, reusePort=False)
        unlink = spec.host if spec.family == "UNIX" and not spec.host.startswith("\0") else None
        return OpenedListener(spec, [sock], _boundAddress(sock), unlink)
    sockets = [_bind(spec, spec.port, reusePort=True)]
    address = _boundAddress(sockets[0])
    port = address[1] if isinstance(address, tuple) else 0
    try:
        for _ in range(slots - 1):
            sockets.append(_bind(spec, port, reusePort=True))
    except CannotListenError:
        for sock in sockets:
            sock.close()
        raise
    return OpenedListener(spec, sockets, address)


def _refuseLiveUnixSocket(spec: ListenSpec) -> None:
    """
    Leave an existing UNIX socket file alone: the bind then fails with
    C{EADDRINUSE}, which names the file (as a server without workers does).

    @raise CannotListenError: the path exists and is not a socket.
    """
    if spec.family != "UNIX":
        return
    try:
        mode = os.stat(spec.host).st_mode
    except OSError:
        return
    if not stat.S_ISSOCK(mode):
        raise _cannotListen(spec, OSError(errno.EADDRINUSE, f"{spec.host} exists and is not a socket"))
