"""
The built-in services of a txgetty RPC server: C{Health}, which every
L{RpcServer <txgetty.rpc.server.RpcServer>} serves, and the demo services
C{Echo}, C{Ping} and C{Status}.  C{twistd txgetty} serves the demo services
only while no application of the user's is configured (no C{--app},
C{--service} or TLS listener), or with C{--rpc-demo}: C{Status} shows every
service name and the uptime.
"""

from __future__ import annotations

from typing import Any

from .errors import ServiceError
from .services import rpcmethod

#: The answers of C{Health.check}, as in gRPC's health checking protocol.
SERVING = "SERVING"
NOT_SERVING = "NOT_SERVING"


class NoSuchService(ServiceError):
    """
    C{Health.check} was asked about a service the server does not have.
    """


class BadRequest(ServiceError):
    """
    C{Health.check} was given a service name that is not text.
    """


class Health:
    """
    C{Health.check(service="")}: C{{"status": "SERVING"}} or
    C{{"status": "NOT_SERVING"}}, the health question of gRPC's health
    checking protocol in txgetty's RPC protocol (docs/rpc-protocol.md,
    "The health service").  Every L{RpcServer
    <txgetty.rpc.server.RpcServer>} serves it, demo services or not.
    """

    def __init__(self, server: Any) -> None:
        """
        @param server: the L{RpcServer <txgetty.rpc.server.RpcServer>}.
        """
        self._server = server

    @rpcmethod
    def check(self, service: str = "") -> dict[str, str]:
        """
        @param service: a service name; C{""} (the default) asks about the
            server as a whole.
        @return: C{{"status": "SERVING"}} while the server takes calls,
            C{{"status": "NOT_SERVING"}} while it drains or stops.
        @raise NoSuchService: the server has no service of that name.
        @raise BadRequest: C{service} is not text.
        """
        if not isinstance(service, str):
            raise BadRequest(f"Health.check takes a service name (text), got {type(service).__name__}")
        if service and not self._server.registry.hasService(service):
            names = ", ".join(self._server.registry.names()) or "none"
            raise NoSuchService(f"Health.check: no service named {service!r}; services: {names}")
        return {"status": SERVING if self._server.serving else NOT_SERVING}


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
