"""
Why an RPC server refuses a call without running it: the error head of
C{ShuttingDown}, C{ServerBusy}, C{BadRequest}, C{NoSuchService} and
C{NoSuchMethod} (docs/rpc-protocol.md, I{Refusals}).
"""

from __future__ import annotations

from typing import Collection

from . import frame as F
from .calls import cutText, errorHead
from .services import Method, ServiceRegistry

#: The demo services, and what a NoSuchService for one of them adds.
_DEMO_SERVICES = frozenset({"Echo", "Ping", "Status"})
_DEMO_HINT = ("; Echo, Ping and Status are the demo services: twistd txgetty serves them when given no --app, "
              "--service or TLS listener, or with --rpc-demo; an RpcServer after registerBuiltins(server)")


def refusalHead(registry: ServiceRegistry, frame: F.Frame, calls: Collection[int], *, draining: bool,
                healthCheck: Method | None, maxInFlight: int) -> dict[str, str]:
    """
    Word why a request cannot run, by the first reason that applies, in the
    order of docs/rpc-protocol.md (I{Refusals}).

    @param registry: the server's services.
    @param frame: the request or oneway.
    @param calls: the request ids in flight on its connection.
    @param draining: whether the server is stopping.
    @param healthCheck: the method that still answers while it stops.
    @param maxInFlight: the calls a connection may have in flight.
    @return: the error head.
    """
    head = frame.head
    asked = registry.lookup(head.get(F.SERVICE, ""), head.get(F.METHOD, ""))
    if draining and asked is not healthCheck:
        return errorHead("ShuttingDown", "the server is shutting down; call another server")
    if len(calls) >= maxInFlight:
        return errorHead("ServerBusy", f"{maxInFlight} calls of this connection are in flight "
                                       f"(maxInFlight); retry later", "busy")
    if frame.type == F.REQUEST and frame.requestId in calls:
        return errorHead("BadRequest", f"request id {frame.requestId} is already in flight on this connection; "
                                       f"give each request in flight an id of its own")
    service, method = head.get(F.SERVICE), head.get(F.METHOD)
    for key, value in ((F.SERVICE, service), (F.METHOD, method)):
        if not value:
            state = "is empty" if value == "" else "is missing"
            return errorHead("BadRequest", f"the request's head entry {key!r} {state}: name the service "
                                           f"and the method to call ('service' and 'method')")
    if not registry.hasService(service):  # type: ignore[arg-type]
        demo = _DEMO_HINT if service in _DEMO_SERVICES else ""
        return errorHead("NoSuchService", f"no service named {service!r}; "
                                          f"services: {', '.join(registry.names()) or 'none'}{demo}")
    if registry.lookup(service, method) is None:  # type: ignore[arg-type]
        return errorHead("NoSuchMethod", f"service {service!r} has no method {method!r}; "
                                         f"methods: {', '.join(registry.names()[service])}")  # type: ignore[index]
    return errorHead("BadRequest", f"the request's timeout-ms {cutText(head[F.TIMEOUT_MS], 40)!r} is not "
                                   f"a deadline: send 1 to 10 ASCII digits of milliseconds, optionally with "
                                   f"a '.' and 1 to 3 more digits (e.g. '30000'), '0' for none, or no "
                                   f"timeout-ms entry")
