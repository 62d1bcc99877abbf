"""
What the workers' tests and benchmark run in real processes:

  - L{makeWorkerService}: a worker factory (see L{txgetty.workers.command})
    serving, on the adopted sockets of group C{"echo"}, txgetty's hello
    framing with an echo that answers C{b"pid"} with the worker's process id
    (stream) and a datagram echo that prefixes the pid (UDP), and on group
    C{"rpc"} an L{RpcServer <txgetty.rpc.RpcServer>} with the service
    C{Work} (C{pid}, C{echo}, C{slow}, C{burn});
  - L{main}: a supervisor process, C{python -m tests.support.workerapps JSON}, run as
    C{twist} runs a service, in a process group of its own (so that a test
    can kill it and its workers at once); it logs C{SUPERVISOR-READY
    {json}} with the bound addresses once every worker is ready.  With
    C{workers: 0} it serves the same services itself, without a supervisor
    (the benchmark's baseline).

The JSON: C{workers}, C{listeners} (group -> descriptions), C{options}
(for the workers), and optionally C{readyTimeout}, C{drainTimeout},
C{restartDelay}, C{factory}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

from txgetty import EventListener, HelloCodec, ReconnectPolicy, Server
from txgetty.rpc import RpcServer
from txgetty.workers import WorkerCommand, WorkerSupervisor

_log = Logger()

#: The checkout, put on the workers' path so that they import this module.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FACTORY = "tests.support.workerapps:makeWorkerService"


class WhoEcho(EventListener):
    """
    Echo, except that C{b"pid"} is answered with the worker's pid.
    """

    def onMessage(self, session: Any, pkg: bytes) -> None:
        session.writePkg(str(os.getpid()).encode() if pkg == b"pid" else pkg)


def _newSession(session: Any) -> None:
    session.codec = HelloCodec()
    session.listener = WhoEcho()


class DatagramEcho(DatagramProtocol):
    """
    Sends every datagram back, prefixed with C{PID:}.
    """

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.transport.write(str(os.getpid()).encode() + b":" + data, addr)


def burnLoops(seconds: float = 200e-6) -> int:
    """
    @return: how many rounds of L{Work.burn}'s loop take about C{seconds}
        on this machine (from the fastest of a few timings: the others were
        slowed by other processes).
    """
    rounds = 1000
    timings = []
    for _ in range(15):
        started = time.perf_counter()
        _burn(rounds)
        timings.append(time.perf_counter() - started)
    return max(1, int(rounds * seconds / min(timings)))


def _burn(rounds: int) -> int:
    """
    Pure-Python work: C{rounds} multiply-adds.
    """
    total = 0
    for i in range(rounds):
        total += i * i
    return total


class Work:
    """
    The RPC service of the tests.
    """

    def __init__(self, reactor: Any, burnRounds: int) -> None:
        self.reactor = reactor
        self.burnRounds = burnRounds

    def pid(self) -> int:
        return os.getpid()

    def echo(self, value: Any) -> Any:
        return value

    def slow(self, seconds: float) -> Any:
        return deferLater(self.reactor, seconds, os.getpid)

    def burn(self, text: str) -> str:
        _burn(self.burnRounds)
        return text


#: What C{twistd txgetty --app} takes: the echo that answers C{b"pid"}.
newSession = _newSession


class TapWork(Work):
    """
    L{Work} for C{twistd txgetty --service tests.support.workerapps:TapWork}
    (made without arguments): the global reactor, and C{burn} rounds from
    C{$TXGETTY_BURN_ROUNDS} (default 1000).
    """

    def __init__(self) -> None:
        from twisted.internet import reactor

        super().__init__(reactor, int(os.environ.get("TXGETTY_BURN_ROUNDS", "1000")))


class _DatagramService(MultiService):
    """
    Listens on adopted datagram endpoints while running.
    """

    def __init__(self, endpoints: list[Any]) -> None:
        super().__init__()
        self.endpoints = endpoints
        self.ports: list[Any] = []

    def startService(self) -> None:
        super().startService()
        for endpoint in self.endpoints:
            endpoint.listen(DatagramEcho()).addCallback(self.ports.append)

    def stopService(self) -> Any:
        super().stopService()
        ports, self.ports = self.ports, []
        for port in ports:
            port.stopListening()


def makeWorkerService(options: dict, sockets: Any, reactor: Any) -> Any:
    """
    The worker factory of the tests (see the module docstring).  Options:
    C{shutdownTimeout} and C{burnRounds} of the RPC server; C{failStart}
    (raise); C{hangIfExists}: a path; if it exists, never build (the worker
    never reports ready).
    """
    if options.get("hangIfExists") and os.path.exists(options["hangIfExists"]):
        return Deferred()
    top = MultiService()
    echo = sockets.inGroup("echo")
    streams = [sockets.endpoint(info) for info in echo if info.kind == "stream"]
    datagrams = [sockets.endpoint(info) for info in echo if info.kind == "datagram"]
    if streams:
        Server(streams, _newSession, reactor=reactor, name="txgetty echo").setServiceParent(top)
    if datagrams:
        _DatagramService(datagrams).setServiceParent(top)
    rpc = sockets.endpoints("rpc")
    if rpc:
        server = RpcServer(rpc, reactor=reactor, shutdownTimeout=options.get("shutdownTimeout", 10.0))
        server.register(Work(reactor, options.get("burnRounds", 1000)), "Work")
        server.setServiceParent(top)
    if options.get("failStart"):
        raise RuntimeError("failStart is set: this worker refuses to start")
    return top


class DirectSockets:
    """
    The listeners of a process without a supervisor, as the worker factory
    sees them: each endpoint is its description (a L{Server} binds it).
    """

    def __init__(self, listeners: dict[str, list[str]]) -> None:
        self.listeners = listeners

    def inGroup(self, group: str) -> list[Any]:
        from txgetty.workers import listenSpec

        return [listenSpec(d) for d in self.listeners.get(group, [])]

    def endpoint(self, spec: Any) -> str:
        return spec.description

    def endpoints(self, group: str) -> list[str]:
        return list(self.listeners.get(group, []))


def serveDirect(args: dict, reactor: Any) -> Any:
    """
    C{workers: 0}: serve the worker factory's services in this process, on
    its own sockets (the benchmark's baseline without a supervisor).

    @return: the services, started.
    """
    service = makeWorkerService(args.get("options", {}), DirectSockets(args["listeners"]), reactor)
    service.startService()
    servers = [s for s in service if hasattr(s, "whenListening")]

    def ready(results: list[Any]) -> None:
        addresses: dict[str, list[Any]] = {}
        for group, server in zip([g for g in ("echo", "rpc") if args["listeners"].get(g)], servers):
            addresses[group] = [[a.host, a.port] for a in results[servers.index(server)]]
        _log.info("SUPERVISOR-READY {info}", info=json.dumps({"addresses": addresses, "pids": [os.getpid()],
                                                                "supervisor": os.getpid()}))

    from twisted.internet.defer import gatherResults

    gatherResults([s.whenListening() for s in servers]).addCallback(ready)
    return service


def makeSupervisor(args: dict, reactor: Any) -> WorkerSupervisor:
    """
    @param args: see the module docstring.
    @return: the supervisor.
    """
    command = WorkerCommand(args.get("factory", FACTORY), args.get("options", {}), path=[ROOT],
                            logLevel=args.get("logLevel", "info"))
    delay = args.get("restartDelay", 0.3)
    policy = ReconnectPolicy(initialDelay=delay, maxDelay=max(delay, 5.0), stableAfter=args.get("stableAfter", 2.0))
    return WorkerSupervisor(args["workers"], args["listeners"], command, reactor=reactor, restartPolicy=policy,
                            readyTimeout=args.get("readyTimeout", 20.0), drainTimeout=args.get("drainTimeout", 20.0))


def readyLine(supervisor: WorkerSupervisor) -> str:
    """
    @return: the JSON of the C{SUPERVISOR-READY} line: the bound addresses
        by group, and the workers' pids.
    """
    addresses: dict[str, list[Any]] = {}
    for group, _, _ in supervisor.specs:
        addresses[group] = [list(a) if isinstance(a, tuple) else a for a in supervisor.addresses(group)]
    return json.dumps({"addresses": addresses, "pids": [s["pid"] for s in supervisor.status()],
                       "supervisor": os.getpid()})


def main() -> None:
    """
    Run a supervisor (see the module docstring) until SIGTERM / SIGINT.
    """
    if os.getpgid(0) != os.getpid():  # not already a group leader (setsid)
        os.setpgid(0, 0)
    args = json.loads(sys.argv[1])
    from twisted.internet import reactor

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
    if args["workers"] == 0:
        reactor.callWhenRunning(lambda: reactor.addSystemEventTrigger(
            "before", "shutdown", serveDirect(args, reactor).stopService))
        reactor.run()
        return
    supervisor = makeSupervisor(args, reactor)

    def ready(_: Any) -> None:
        _log.info("SUPERVISOR-READY {info}", info=readyLine(supervisor))

    def start() -> None:
        try:
            supervisor.startService()
        except Exception:
            _log.failure("the supervisor cannot start")
            reactor.stop()
            return
        supervisor.whenReady().addCallback(ready)

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", supervisor.stopService)
    reactor.run()


if __name__ == "__main__":
    main()


# -- the kernel's behaviour the design rests on (tests/test_workers_kernel.py,
#    benchmarks/workers.py) --------------------------------------------------


def reuseportSpread(listeners: int, connections: int = 50) -> list[int]:
    """
    Open C{listeners} TCP sockets bound to one port with C{SO_REUSEPORT} (as
    per-worker sockets would be), make C{connections} connections, and count
    how many the kernel queued on each.

    @return: the count per socket.
    """
    import socket

    sockets, port = [], 0
    try:
        for _ in range(listeners):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", port))
            port = sock.getsockname()[1]
            sock.listen(connections)
            sock.setblocking(False)
            sockets.append(sock)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(connections)]
        time.sleep(0.01)
        accepted = [_acceptAll(sock) for sock in sockets]
        for conn in sum(accepted, []) + clients:
            conn.close()
        return [len(a) for a in accepted]
    finally:
        for sock in sockets:
            sock.close()


def _acceptAll(sock: Any) -> list[Any]:
    """
    @return: every connection waiting on a non-blocking listening socket.
    """
    accepted = []
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return accepted
        accepted.append(conn)


def queuedThroughClose(held: bool, connections: int = 20) -> dict[str, int]:
    """
    Two C{SO_REUSEPORT} listeners on one port; C{connections} connect; then
    the first listener's owner "dies" (its socket is closed) with its
    connections still queued.  If C{held}, another copy of that socket stays
    open (as the supervisor keeps every socket), and is accepted from later.

    @return: C{reset}: connections the kernel reset; C{acceptedLater}: those
        accepted afterwards (by the other listener or the held copy);
        C{total}.
    """
    import os
    import socket

    first, second = socket.socket(), socket.socket()
    for sock in (first, second):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    first.bind(("127.0.0.1", 0))
    port = first.getsockname()[1]
    second.bind(("127.0.0.1", port))
    for sock in (first, second):
        sock.listen(connections)
    copy = socket.socket(fileno=os.dup(first.fileno())) if held else None
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(connections)]
    try:
        time.sleep(0.01)
        first.close()
        time.sleep(0.01)
        later = []
        for sock in filter(None, (second, copy)):
            sock.setblocking(False)
            later += _acceptAll(sock)
        reset = 0
        for client in clients:
            # A connection still queued or accepted reads nothing (timeout);
            # a reset one fails.
            client.settimeout(0.05)
            try:
                client.send(b"x")
                client.recv(1)
            except (ConnectionResetError, BrokenPipeError):
                reset += 1
            except OSError:
                pass
        for conn in later:
            conn.close()
        return {"reset": reset, "acceptedLater": len(later), "total": connections}
    finally:
        for sock in filter(None, (second, copy)):
            sock.close()
        for client in clients:
            client.close()


def pidsOf(port: int, connections: int = 50, host: str = "127.0.0.1") -> list[int]:
    """
    Open C{connections} connections at once to a test echo listener and ask
    each which worker serves it (blocking; for benchmarks/workers.py).

    @return: the worker pid of each connection.
    """
    import socket
    import struct

    clients = [socket.create_connection((host, port), timeout=10) for _ in range(connections)]
    try:
        for client in clients:
            client.sendall(struct.pack("<I", 3) + b"pid")
        pids = []
        for client in clients:
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack("<I", data[:4])[0]:
                chunk = client.recv(64)
                if not chunk:
                    raise ConnectionError("the worker closed the connection")
                data += chunk
            pids.append(int(data[4:]))
        return pids
    finally:
        for client in clients:
            client.close()
