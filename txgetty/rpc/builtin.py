"""
The demo services a txgetty RPC server can serve: C{Echo}, C{Ping} and
C{Status}.  C{twistd txgetty} serves them only while no application of the
user's is configured (no C{--app}, C{--service} or TLS listener), or with
C{--rpc-demo}: C{Status} shows every service name and the uptime.
"""

from __future__ import annotations

from typing import Any

from .services import rpcmethod


class Echo:
    """
    C{Echo.echo(value)}: the value back.
    """

    @rpcmethod
    def echo(self, value: Any = None) -> Any:
        """
        @param value: anything serializable.
        @return: the same value.
        """
        return value


class Ping:
    """
    C{Ping.ping()}: C{"pong"}.
    """

    @rpcmethod
    def ping(self) -> str:
        """
        @return: C{"pong"}.
        """
        return "pong"


class Status:
    """
    C{Status.status()}: the server's counters, services and uptime.
    """

    def __init__(self, server: Any) -> None:
        """
        @param server: the L{RpcServer <txgetty.rpc.server.RpcServer>}.
        """
        self._server = server

    @rpcmethod
    def status(self) -> dict[str, Any]:
        """
        @return: connections, calls, errors, busy refusals, cancelled calls,
            calls in flight, uptime in seconds, and the services with their
            methods (see L{RpcServer.status <txgetty.rpc.server.RpcServer.status>}).
        """
        return self._server.status()


def registerBuiltins(server: Any) -> None:
    """
    Register C{Echo}, C{Ping} and C{Status} on a server.

    @param server: the L{RpcServer <txgetty.rpc.server.RpcServer>}.
    """
    server.register(Echo())
    server.register(Ping())
    server.register(Status(server))
