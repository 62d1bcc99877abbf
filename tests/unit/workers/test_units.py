"""
Units of L{txgetty.workers}: the control channel, the balancer and its
acceptors, listener specs and binding, the worker command and
configuration, the adopted endpoints, the worker process (with a fake
reactor and process transport), the supervisor's wiring, the worker
runtime's stop hand-shake.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
from typing import Any

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.error import CannotListenError, ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IListeningPort, IProcessTransport, IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txgetty import ConfigError
from txgetty.workers import (
    AdoptedDatagramEndpoint,
    AdoptedStreamEndpoint,
    ListenerInfo,
    WorkerCommand,
    WorkerConfig,
    WorkerSupervisor,
    listenSpec,
    listenSpecs,
    workerCount,
)
from txgetty.workers import slot as S
from txgetty.workers.adopted import ConnectionReceiver
from txgetty.workers.balancer import Acceptor, Balancer
from txgetty.workers.channel import ControlChannel, channelPair
from txgetty.workers.command import CONFIG_ENV, IWorkerCommand
from txgetty.workers.process import WorkerProcess, describeExit
from txgetty.workers.sockets import openListener
from txgetty.workers.worker import AdoptedSockets, WorkerRuntime

from ...support.logs import captureEvents


class Receiver:
    """
    Collects what a channel delivers.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[dict, list[int]]] = []
        self.lost: list[Failure] = []

    def messageReceived(self, message: dict, fds: list[int]) -> None:
        self.messages.append((message, fds))

    def channelLost(self, reason: Failure) -> None:
        self.lost.append(reason)


def isOpen(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class ChannelTests(SynchronousTestCase):
    """
    L{ControlChannel} over a real socket pair, driven by hand.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        ours, theirs = channelPair()
        self.a, self.b = Receiver(), Receiver()
        self.ours = ControlChannel(self.reactor, ours, self.a)
        self.theirs = ControlChannel(self.reactor, theirs, self.b)
        self.ours.start()
        self.theirs.start()
        self.addCleanup(self.ours.close)
        self.addCleanup(self.theirs.close)

    def test_messagesAndDescriptors(self) -> None:
        """
        Each message arrives whole with exactly the descriptors sent with it;
        descriptors sent with closeFds are closed on the sending side.
        """
        r, w = os.pipe()
        self.assertTrue(self.ours.send({"t": "plain"}))
        self.assertTrue(self.ours.send({"t": "conn", "l": "L0"}, [w], closeFds=True))
        self.assertTrue(self.ours.send({"t": "after"}))
        self.assertFalse(isOpen(w))
        self.theirs.doRead()
        kinds = [(m["t"], len(fds)) for m, fds in self.b.messages]
        self.assertEqual(kinds, [("plain", 0), ("conn", 1), ("after", 0)])
        passed = self.b.messages[1][1][0]
        os.write(passed, b"x")
        self.assertEqual(os.read(r, 1), b"x")
        for fd in (r, passed):
            os.close(fd)

    def test_endOfChannel(self) -> None:
        """
        When one end closes, the other reads the end (CONNECTION_DONE) and
        sends fail, leaving the caller its descriptors.
        """
        self.ours.close()
        self.assertEqual(len(self.a.lost), 1)
        result = self.theirs.doRead()
        self.theirs.connectionLost(Failure(Exception(result)))
        self.assertEqual(len(self.b.lost), 1)
        r, w = os.pipe()
        self.assertFalse(self.theirs.send({"t": "conn"}, [w], closeFds=True))
        self.assertTrue(isOpen(w))
        os.close(r)
        os.close(w)

    def test_brokenPeer(self) -> None:
        """
        A send to a peer that is gone fails at once (the caller keeps the
        descriptor) and the channel closes on the next turn.
        """
        assert self.theirs.socket is not None
        self.theirs.socket.close()
        self.theirs.socket = None
        r, w = os.pipe()
        self.assertFalse(self.ours.send({"t": "conn"}, [w], closeFds=True))
        self.assertTrue(isOpen(w))
        self.assertFalse(self.ours.send({"t": "more"}))
        self.reactor.advance(0)
        self.assertEqual(len(self.a.lost), 1)
        os.close(r)
        os.close(w)

    def test_badMessage(self) -> None:
        """
        A packet that is not a JSON object is dropped (its descriptors
        closed) and logged; the channel stays open.
        """
        assert self.ours.socket is not None
        r, w = os.pipe()
        socket.send_fds(self.ours.socket, [b"[1, 2]"], [w])
        os.close(w)
        self.theirs.doRead()
        self.assertEqual(self.b.messages, [])
        self.assertEqual(len(self.flushLoggedErrors()), 0)
        self.assertEqual(os.read(r, 1), b"")  # the only writer was closed
        os.close(r)
        self.assertFalse(self.theirs.lost)


class FakeWorker:
    """
    A balanced worker recording the connections it gets.
    """

    def __init__(self, label: str, load: int = 0, broken: bool = False) -> None:
        self.label = label
        self.load = load
        self.broken = broken
        self.got: list[tuple[str, int]] = []

    def sendConnection(self, listenerId: str, fd: int) -> bool:
        if self.broken:
            return False
        self.got.append((listenerId, fd))
        self.load += 1
        os.close(fd)
        return True


class BalancerTests(SynchronousTestCase):
    """
    L{Balancer} and L{Acceptor}.
    """

    def test_burstsRoundRobin(self) -> None:
        """
        Workers take turns: a burst is dealt out exactly evenly, even when the
        loads differ for a moment (a late report).
        """
        clock = Clock()
        balancer = Balancer(clock)
        workers = [FakeWorker("a"), FakeWorker("b", load=30), FakeWorker("c")]
        for worker in workers:
            balancer.add(worker)
        picks = []
        for _ in range(9):
            worker = balancer.pick()
            assert worker is not None
            worker.load += 1
            picks.append(worker.label)
            clock.advance(0.01)
        self.assertEqual(picks, ["a", "b", "c"] * 3)

    def test_lastingOverloadSkipped(self) -> None:
        """
        A worker that holds more than the margin above the least loaded one
        for SETTLE seconds misses its turns until it is back within it.
        """
        from txgetty.workers.balancer import SETTLE

        clock = Clock()
        balancer = Balancer(clock)
        old, new = FakeWorker("old", load=25), FakeWorker("new")
        balancer.add(old)
        balancer.add(new)
        self.assertEqual([balancer.pick().label for _ in range(2)], ["old", "new"])  # type: ignore[union-attr]
        clock.advance(SETTLE)
        picks = []
        for _ in range(30):
            worker = balancer.pick()
            assert worker is not None
            worker.load += 1
            picks.append(worker.label)
        self.assertEqual(picks[:20], ["new"] * 20)
        self.assertLessEqual(abs(old.load - new.load), 6)

    def test_brokenWorkerSkipped(self) -> None:
        """
        A worker whose channel is broken is dropped and the connection goes
        to the next; with no worker left it is closed.
        """
        balancer = Balancer(Clock())
        broken, good = FakeWorker("x", broken=True), FakeWorker("y", load=5)
        balancer.add(broken)
        balancer.add(good)
        r, w = os.pipe()
        self.assertTrue(balancer.hand("L0", w))
        self.assertEqual(balancer.workers, [good])
        self.assertEqual(len(good.got), 1)
        balancer.remove(good)
        r2, w2 = os.pipe()
        self.assertFalse(balancer.hand("L0", w2))
        self.assertFalse(isOpen(w2))
        for fd in (r, r2):
            os.close(fd)

    def acceptor(self, label: str) -> tuple[MemoryReactorClock, socket.socket, Balancer, Acceptor]:
        """
        @param label: the acceptor's label (its listener in logs).
        @return: a memory reactor, a listening socket on 127.0.0.1 (closed
            at clean-up), a balancer and a started acceptor of listener
            C{L0} on that socket.
        """
        reactor = MemoryReactorClock()
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        listening.listen(50)
        listening.setblocking(False)
        self.addCleanup(listening.close)
        balancer = Balancer(reactor)
        acceptor = Acceptor(reactor, listening, "L0", balancer, label)
        acceptor.start()
        return reactor, listening, balancer, acceptor

    def test_acceptorDealsConnections(self) -> None:
        """
        An acceptor reads its socket only while a worker is ready, and deals
        the accepted connections out evenly.
        """
        reactor, listening, balancer, acceptor = self.acceptor("test")
        self.assertNotIn(acceptor, reactor.getReaders())
        workers = [FakeWorker("a"), FakeWorker("b")]
        for worker in workers:
            balancer.add(worker)
        self.assertIn(acceptor, reactor.getReaders())
        clients = [socket.create_connection(listening.getsockname()) for _ in range(10)]
        self.addCleanup(lambda: [c.close() for c in clients])
        acceptor.doRead()
        self.assertEqual([len(w.got) for w in workers], [5, 5])
        self.assertEqual(acceptor.accepted, 10)
        for worker in workers:
            balancer.remove(worker)
        self.assertNotIn(acceptor, reactor.getReaders())
        acceptor.stop()

    def test_dropLogged(self) -> None:
        """
        A connection no worker can take (the only one's channel broke) is
        closed, counted in C{dropped} and logged: the first at once (warn,
        with C{endpoint} and C{listenerId}), the next ones in one line per
        interval.
        """
        events = captureEvents(self)
        reactor, listening, balancer, acceptor = self.acceptor("tcp:0:interface=127.0.0.1")
        balancer.add(FakeWorker("a", broken=True))
        clients = [socket.create_connection(listening.getsockname()) for _ in range(3)]
        self.addCleanup(lambda: [c.close() for c in clients])
        acceptor.doRead()
        self.assertEqual((acceptor.accepted, acceptor.dropped), (1, 1))
        balancer.add(FakeWorker("b", broken=True))
        acceptor.doRead()
        balancer.add(FakeWorker("c", broken=True))
        acceptor.doRead()
        self.assertEqual(acceptor.dropped, 3)
        [first] = [e for e in events if e.get("log_namespace") == "txgetty.workers.balancer"]
        self.assertEqual(first["log_level"], LogLevel.warn)
        self.assertEqual((first["endpoint"], first["listenerId"]), ("tcp:0:interface=127.0.0.1", "L0"))
        reactor.advance(acceptor.drops.interval)
        [_, again] = [e for e in events if e.get("log_namespace") == "txgetty.workers.balancer"]
        self.assertIn("closed 2 more connections", formatEvent(again))
        acceptor.stop()


class SpecTests(SynchronousTestCase):
    """
    L{listenSpec}: what the supervisor binds, by description.
    """

    def test_kinds(self) -> None:
        """
        tcp, tcp6, tls, unix, ws/wss, udp and systemd descriptions give their
        family, address, backlog and kind.
        """
        tcp = listenSpec("tcp:8090:interface=127.0.0.1:backlog=10:maxSessions=5")
        self.assertEqual((tcp.kind, tcp.family, tcp.host, tcp.port, tcp.backlog),
                         ("stream", "INET", "127.0.0.1", 8090, 10))
        self.assertEqual(listenSpec("tcp6:0").family, "INET6")
        self.assertEqual(listenSpec("tcp6:0").host, "::")
        self.assertEqual(listenSpec("tcp:0:interface=\\:\\:1").family, "INET6")
        tls = listenSpec("tls:8443:interface=127.0.0.1:key=k.pem:cert=c.pem", backlog=7)
        self.assertEqual((tls.kind, tls.port, tls.backlog), ("stream", 8443, 7))
        unix = listenSpec("unix:/tmp/x.sock:mode=600")
        self.assertEqual((unix.family, unix.host, unix.mode), ("UNIX", "/tmp/x.sock", 0o600))
        ws = listenSpec("wss://0.0.0.0:9000/chat?backlog=3")
        self.assertEqual((ws.kind, ws.host, ws.port, ws.backlog), ("stream", "", 9000, 3))
        udp = listenSpec("udp:0:interface=127.0.0.1:maxPeers=9")
        self.assertEqual((udp.kind, udp.host, udp.port), ("datagram", "127.0.0.1", 0))
        self.assertEqual(listenSpec("systemd:domain=INET:index=0").systemd, 0)
        self.assertEqual(listenSpec("systemd:domain=UNIX:name=api").systemd, "api")

    def test_errors(self) -> None:
        """
        Descriptions a supervisor cannot bind are refused with a message
        naming what it can bind.
        """
        for bad, words in [("onion:80", "cannot be served by workers"), ("tcp:99999", "bad port"),
                           ("unix:", "names no socket path"), ("systemd:domain=X:index=0", "domain must be"),
                           ("systemd:domain=INET", "exactly one of index"), ("tcp:1:backlog=0", "backlog")]:
            with self.assertRaises(ConfigError) as caught:
                listenSpec(bad)
            self.assertIn(words, str(caught.exception))

    def test_webSocketPortsShared(self) -> None:
        """
        WebSocket URLs of one port are one listener; port 0 URLs stay apart.
        """
        specs = listenSpecs(["ws://127.0.0.1:9000/a", "ws://127.0.0.1:9000/b", "ws://127.0.0.1:0/c",
                             "ws://127.0.0.1:0/d"])
        self.assertEqual([s.description for s in specs],
                         ["ws://127.0.0.1:9000/a", "ws://127.0.0.1:0/c", "ws://127.0.0.1:0/d"])


class OpenTests(SynchronousTestCase):
    """
    L{openListener} binds for real.
    """

    def test_datagramGroupSharesPort(self) -> None:
        """
        A UDP listener on port 0 is one SO_REUSEPORT socket per slot, all on
        the port the first one got.
        """
        opened = openListener(listenSpec("udp:0:interface=127.0.0.1"), 3)
        self.addCleanup(opened.close)
        ports = {s.getsockname()[1] for s in opened.sockets}
        self.assertEqual(len(opened.sockets), 3)
        self.assertEqual(ports, {opened.address[1]})
        for sock in opened.sockets:
            self.assertEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT), 1)

    def test_streamOnce(self) -> None:
        """
        A stream listener is one listening socket, whatever the slots.
        """
        opened = openListener(listenSpec("tcp:0:interface=127.0.0.1"), 4)
        self.addCleanup(opened.close)
        self.assertEqual(len(opened.sockets), 1)
        self.assertNotEqual(opened.address[1], 0)

    def test_unixModeAndUnlink(self) -> None:
        """
        A UNIX listener gets its mode, and its file is removed on close; an
        existing file that is not a socket is refused.
        """
        path = os.path.join(tempfile.mkdtemp(), "s.sock")
        opened = openListener(listenSpec(f"unix:{path}:mode=600"), 2)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        opened.close()
        self.assertFalse(os.path.exists(path))
        with open(path, "w"):
            pass
        with self.assertRaises(CannotListenError):
            openListener(listenSpec(f"unix:{path}"), 1)

    def test_portInUse(self) -> None:
        """
        A port in use fails with CannotListenError (what twistd's listen-error
        reporting names), and nothing stays bound.
        """
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        with self.assertRaises(CannotListenError) as caught:
            openListener(listenSpec(f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"), 1)
        self.assertEqual(caught.exception.port, taken.getsockname()[1])

    def test_systemd(self) -> None:
        """
        A systemd listener is the socket systemd passed (found as Twisted's
        systemd: endpoint finds it); a missing one is refused with what to
        check.
        """
        passed = socket.socket()
        passed.bind(("127.0.0.1", 0))
        passed.listen(1)
        self.addCleanup(passed.close)
        opened = openListener(listenSpec("systemd:domain=INET:name=api"), 2, lambda spec: passed.fileno())
        self.assertEqual(opened.address, passed.getsockname())
        opened.sockets[0].detach()
        with self.assertRaises(ConfigError) as caught:
            openListener(listenSpec("systemd:domain=INET:name=nosuchname"), 1)
        self.assertIn("systemd passed no socket named 'nosuchname'; check the .socket unit", str(caught.exception))


class CommandTests(SynchronousTestCase):
    """
    L{WorkerCommand}, L{WorkerConfig}, L{workerCount}.
    """

    def test_configRoundTrip(self) -> None:
        """
        A configuration survives its JSON; bad JSON is a ConfigError naming
        the variable.
        """
        config = WorkerConfig(1, 7, "m:f", {"a": [1]}, [ListenerInfo("L0", "g", ["udp:0"], "datagram", "INET",
                                                                   ["127.0.0.1", 5], 4)])
        self.assertEqual(WorkerConfig.fromJSON(config.toJSON()), config)
        with self.assertRaises(ConfigError) as caught:
            WorkerConfig.fromJSON("{")
        self.assertIn(CONFIG_ENV, str(caught.exception))

    def test_spawnArguments(self) -> None:
        """
        The command runs C{python -m txgetty.workers} with the configuration
        in the environment, the path first on PYTHONPATH, and without
        systemd's variables (they are the supervisor's).
        """
        command = WorkerCommand("m:f", {"x": 1}, python="/py", path=["/app"],
                                environ={"PYTHONPATH": "/old", "LISTEN_FDS": "1", "LISTEN_PID": "9", "HOME": "/h"})
        verifyObject(IWorkerCommand, command)
        executable, args, env = command.spawnArguments(WorkerConfig(2, 3, ""))
        self.assertEqual((executable, args), ("/py", ["/py", "-m", "txgetty.workers", "slot=2"]))
        self.assertEqual(env["PYTHONPATH"], os.pathsep.join(["/app", "/old"]))
        self.assertNotIn("LISTEN_FDS", env)
        self.assertNotIn("LISTEN_PID", env)
        config = json.loads(env[CONFIG_ENV])
        self.assertEqual((config["factory"], config["options"], config["slot"]), ("m:f", {"x": 1}, 2))

    def test_badCommand(self) -> None:
        """
        A factory that is not MODULE:CALLABLE and options that are not JSON
        are refused.
        """
        self.assertRaises(ConfigError, WorkerCommand, "nofactory")
        self.assertRaises(ConfigError, WorkerCommand, "m:f", {"x": object()})

    def test_workerCount(self) -> None:
        """
        A whole number of 1 or more, or auto (the CPUs this process may use).
        """
        self.assertEqual(workerCount("3"), 3)
        self.assertGreaterEqual(workerCount("auto"), 1)
        for bad in ("0", "-1", "x", True, 1.5):
            self.assertRaises(ConfigError, workerCount, bad)


class AdoptedTests(SynchronousTestCase):
    """
    The worker's endpoints.
    """

    def test_streamEndpoint(self) -> None:
        """
        An adopted stream endpoint is an IStreamServerEndpoint whose port
        adopts the connections handed over for its listener, reports the
        supervisor's address, and stops taking them when it stops listening.
        """
        reactor = MemoryReactorClock()
        receiver = ConnectionReceiver(reactor)
        endpoint = AdoptedStreamEndpoint(receiver, "L0", "INET", ["127.0.0.1", 8090], "tcp:8090")
        verifyObject(IStreamServerEndpoint, endpoint)
        factory = Factory.forProtocol(Protocol)
        port = self.successResultOf(endpoint.listen(factory))
        verifyObject(IListeningPort, port)
        self.assertEqual(port.getHost(), IPv4Address("TCP", "127.0.0.1", 8090))
        self.failureResultOf(endpoint.listen(factory))
        r, w = os.pipe()
        receiver.connectionReceived("L0", w)
        self.assertEqual(reactor.adoptedStreamConnections, [(w, socket.AF_INET, factory)])
        self.assertFalse(isOpen(w))
        self.successResultOf(port.stopListening())
        r2, w2 = os.pipe()
        receiver.connectionReceived("L0", w2)
        self.assertEqual(len(reactor.adoptedStreamConnections), 1)
        self.assertFalse(isOpen(w2))
        self.assertEqual(receiver.received, 2)
        for fd in (r, r2):
            os.close(fd)

    def test_countsOpenConnections(self) -> None:
        """
        The receiver counts the adopted connections until the reactor tells
        their transports they are lost, and says when the counts change.
        """
        transports: list[Any] = []

        class Transport:
            disconnected = False

            def __init__(self) -> None:
                self.lost: list[Any] = []

            def connectionLost(self, reason: Any) -> None:
                self.lost.append(reason)

        class Reactor(MemoryReactorClock):
            def adoptStreamConnection(self, fd: int, family: int, factory: Any) -> Any:
                transports.append(Transport())
                return transports[-1]

        changes: list[tuple[int, int]] = []
        receiver = ConnectionReceiver(Reactor(), lambda: changes.append((receiver.live, receiver.received)))
        self.successResultOf(AdoptedStreamEndpoint(receiver, "L0", "INET", ["127.0.0.1", 1]).listen(
            Factory.forProtocol(Protocol)))
        for _ in range(2):
            r, w = os.pipe()
            receiver.connectionReceived("L0", w)
            os.close(r)
        self.assertEqual(receiver.live, 2)
        transports[0].connectionLost("gone")
        self.assertEqual((receiver.live, receiver.received), (1, 2))
        self.assertEqual(transports[0].lost, ["gone"])
        self.assertEqual(changes[-1], (1, 2))

    def test_unixAddressAndTLS(self) -> None:
        """
        A UNIX listener reports its path; with TLS options each connection's
        factory is wrapped in TLS.
        """
        from twisted.internet.ssl import CertificateOptions
        from twisted.protocols.tls import TLSMemoryBIOFactory

        reactor = MemoryReactorClock()
        endpoint = AdoptedStreamEndpoint(ConnectionReceiver(reactor), "L1", "UNIX", "/run/x.sock",
                                         tls=CertificateOptions())
        port = self.successResultOf(endpoint.listen(Factory.forProtocol(Protocol)))
        self.assertEqual(port.getHost(), UNIXAddress("/run/x.sock"))
        self.assertIsInstance(port.factory, TLSMemoryBIOFactory)

    def test_datagramEndpoint(self) -> None:
        """
        An adopted datagram endpoint adopts the inherited descriptor, and can
        listen again after a stop (the descriptor stays open).
        """
        reactor = MemoryReactorClock()
        endpoint = AdoptedDatagramEndpoint(reactor, 7, "INET")
        for _ in range(2):
            self.successResultOf(endpoint.listen(Protocol(), 100))
        self.assertEqual([p[:2] + p[3:] for p in reactor.adoptedPorts], [(7, socket.AF_INET, 100)] * 2)

    def test_adoptedSockets(self) -> None:
        """
        A worker finds its endpoints by group; a datagram listener without a
        socket is a ConfigError.
        """
        reactor = MemoryReactorClock()
        listeners = [ListenerInfo("L0", "echo", ["tcp:0"], "stream", "INET", ["127.0.0.1", 1]),
                     ListenerInfo("L1", "echo", ["udp:0"], "datagram", "INET", ["127.0.0.1", 2], 4),
                     ListenerInfo("L2", "rpc", ["tcp:0"], "stream", "INET", ["127.0.0.1", 3]),
                     ListenerInfo("L3", "bad", ["udp:0"], "datagram", "INET", ["127.0.0.1", 4])]
        sockets = AdoptedSockets(reactor, listeners, ConnectionReceiver(reactor))
        self.assertEqual(sockets.groups(), ["echo", "rpc", "bad"])
        kinds = [type(e).__name__ for e in sockets.endpoints("echo")]
        self.assertEqual(kinds, ["AdoptedStreamEndpoint", "AdoptedDatagramEndpoint"])
        self.assertIs(sockets.endpoints("echo")[1], sockets.endpoints("echo")[1])
        self.assertRaises(ConfigError, sockets.endpoints, "bad")


@implementer(IProcessTransport)
class FakeProcess:
    """
    A process transport that records signals (enough of L{IProcessTransport}).
    """

    pid: int = 0

    def __init__(self, pid: int, protocol: Any, args: list[str], env: dict, childFDs: dict) -> None:
        self.pid, self.protocol, self.args, self.env, self.childFDs = pid, protocol, args, env, childFDs
        self.signals: list[str] = []

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)

    def end(self, reason: Failure) -> None:
        self.pid = None  # type: ignore[assignment]
        self.protocol.processEnded(reason)

    def closeStdin(self) -> None: ...

    def closeStdout(self) -> None: ...

    def closeStderr(self) -> None: ...

    def closeChildFD(self, descriptor: int) -> None: ...

    def writeToChild(self, childFD: int, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def writeSequence(self, data: list[bytes]) -> None: ...

    def getPeer(self) -> Any: ...

    def getHost(self) -> Any: ...


class ProcessReactor(MemoryReactorClock):
    """
    A memory reactor that "spawns" L{FakeProcess}es.
    """

    def __init__(self) -> None:
        super().__init__()
        self.processes: list[FakeProcess] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], env: dict | None = None,
                     path: str | None = None, uid: Any = None, gid: Any = None, usePTY: bool = False,
                     childFDs: dict | None = None) -> FakeProcess:
        process = FakeProcess(4000 + len(self.processes), protocol, args, env or {}, childFDs or {})
        verifyObject(IProcessTransport, process)
        self.processes.append(process)
        protocol.makeConnection(process)
        return process


class SupervisorTests(SynchronousTestCase):
    """
    L{WorkerSupervisor} wired to a fake reactor: real sockets, fake
    processes.
    """

    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        self.events: list[dict] = []
        self.supervisor = WorkerSupervisor(
            2, {"echo": ["tcp:0:interface=127.0.0.1", "udp:0:interface=127.0.0.1"]},
            WorkerCommand("tests.support.workerapps:makeWorkerService"), reactor=self.reactor, handleSIGHUP=False,
            observer=self.events.append, readyTimeout=5.0, drainTimeout=3.0)
        self.supervisor.startService()
        self.addCleanup(self._cleanup)

    def _cleanup(self) -> None:
        if self.supervisor.running:
            self.supervisor.stopService()
            for process in self.reactor.processes:
                if process.pid is not None:
                    process.end(Failure(ProcessDone(0)))

    def test_spawnsWithSockets(self) -> None:
        """
        Each worker gets the control channel on descriptor 3 and its own UDP
        socket on 4 (the same port for both), and a configuration naming both
        listeners with the bound addresses.
        """
        first, second = self.reactor.processes
        udp = self.supervisor.listeners["L1"].sockets
        self.assertEqual(first.childFDs[4], udp[0].fileno())
        self.assertEqual(second.childFDs[4], udp[1].fileno())
        self.assertEqual((first.childFDs[1], first.childFDs[2]), ("r", "r"))
        config = WorkerConfig.fromJSON(first.env[CONFIG_ENV])
        self.assertEqual([(i.id, i.kind, i.fd) for i in config.listeners], [("L0", "stream", None),
                                                                          ("L1", "datagram", 4)])
        self.assertEqual(config.listeners[0].address, list(self.supervisor.addresses()[0]))

    def test_readyDiedStop(self) -> None:
        """
        Workers are routed once they report ready; one that dies is logged and
        restarted; stop sends SIGTERM to each and ends once they exited.
        """
        d = self.supervisor.whenReady()
        for process in self.reactor.processes:
            process.protocol.messageReceived({"t": "ready"}, [])
        self.successResultOf(d)
        self.assertEqual(len(self.supervisor.balancer.workers), 2)
        first = self.reactor.processes[0]
        first.end(Failure(ProcessTerminated(signal=9)))
        self.assertEqual(self.supervisor.slots[0].state, S.BACKOFF)
        self.assertEqual(len(self.supervisor.balancer.workers), 1)
        self.reactor.advance(1.0)
        self.assertEqual(len(self.reactor.processes), 3)
        stopped = self.supervisor.stopService()
        live = [p for p in self.reactor.processes if p.pid is not None]
        self.assertEqual([p.signals for p in live], [["TERM"], ["TERM"]])
        self.assertNoResult(stopped)
        for process in live:
            process.end(Failure(ProcessDone(0)))
        self.successResultOf(stopped)
        self.assertEqual(self.supervisor.listeners, {})

    def test_whenStopped(self) -> None:
        """
        C{whenStopped()}, asked before or during a stop, fires once every
        worker exited; asked when no stop is under way and the supervisor
        does not run, at once.
        """
        before = self.supervisor.whenStopped()
        self.supervisor.stopService()
        during = self.supervisor.whenStopped()
        self.assertNoResult(before)
        self.assertNoResult(during)
        for process in self.reactor.processes:
            process.end(Failure(ProcessDone(0)))
        self.successResultOf(before)
        self.successResultOf(during)
        self.successResultOf(self.supervisor.whenStopped())

    def test_reloadOneSlotAtATime(self) -> None:
        """
        reload replaces slot 0 (new worker ready, then the old one drains and
        exits), then slot 1; a reload asked for meanwhile runs after it.
        """
        for process in self.reactor.processes:
            process.protocol.messageReceived({"t": "ready"}, [])
        first = self.supervisor.reload()
        again = self.supervisor.reload()
        self.assertEqual(len(self.reactor.processes), 3)

        def replace(oldIndex: int) -> None:
            new = self.reactor.processes[-1]
            new.protocol.messageReceived({"t": "ready"}, [])
            old = self.reactor.processes[oldIndex]
            self.assertEqual(old.signals, ["TERM"])
            self.assertEqual(len([p for p in self.reactor.processes if p.pid is not None]), 3)
            old.end(Failure(ProcessDone(0)))

        replace(0)
        self.assertEqual(len(self.reactor.processes), 4)
        replace(1)
        self.assertEqual(self.successResultOf(first), 2)
        self.assertEqual(len(self.reactor.processes), 5)
        replace(2)
        replace(3)
        self.assertEqual(self.successResultOf(again), 2)
        self.assertEqual([s.state for s in self.supervisor.slots], [S.READY, S.READY])

    def test_workerLogsRelayed(self) -> None:
        """
        A worker's log events and output lines are published with its slot
        and pid as the log system.
        """
        from twisted.logger import Logger, eventAsJSON

        events: list[dict] = []
        worker = self.reactor.processes[0].protocol
        Logger(observer=events.append).info("hello {who}", who="there")
        worker.messageReceived({"t": "log", "event": eventAsJSON(events[0])}, [])
        relayed = self.events[-1]
        self.assertEqual((relayed["who"], relayed["log_system"]), ("there", f"worker 0 pid {worker.pid}"))

    def test_workerEventsKeepTheirText(self) -> None:
        """
        A worker's event reaches the supervisor with its message as the
        worker formatted it (also for formats that read attributes of their
        fields), its JSON-able fields, and a failure's traceback; a huge one
        is cut to fit a control message.
        """
        from twisted.logger import Logger, formatEvent

        from txgetty.workers.channel import MAX_MESSAGE
        from txgetty.workers.worker import eventText

        class Session:
            name = "tcp-session#7"

        events: list[dict] = []
        log = Logger(observer=events.append)
        log.info("txgetty: {session.name} closed after {n} packets", session=Session(), n=3)
        try:
            1 / 0
        except ZeroDivisionError:
            log.failure("handler of {n} failed", n=4)
        log.info("{big}", big="x" * 100000)
        worker = self.reactor.processes[0].protocol
        for event in events:
            worker.messageReceived({"t": "log", "event": eventText(event)}, [])
        first, failed, big = self.events[-3:]
        self.assertEqual(formatEvent(first), "txgetty: tcp-session#7 closed after 3 packets")
        self.assertEqual(first["n"], 3)
        self.assertIn("ZeroDivisionError", failed["log_failure"].getTraceback())
        self.assertLess(len(eventText(events[-1])), MAX_MESSAGE)
        self.assertIn("(a log event of", formatEvent(big))

    def test_describeExit(self) -> None:
        """
        Exit reasons name the status or the signal.
        """
        self.assertEqual(describeExit(Failure(ProcessDone(0))), "exited with status 0")
        self.assertEqual(describeExit(Failure(ProcessTerminated(exitCode=3))), "exited with status 3")
        self.assertEqual(describeExit(Failure(ProcessTerminated(signal=15))), "was killed by SIGTERM")


class RuntimeTests(SynchronousTestCase):
    """
    L{WorkerRuntime}: start, ready report, the stop hand-shake.
    """

    def test_readyThenDrain(self) -> None:
        """
        The runtime builds and starts the services, reports ready, and on
        stop tells the supervisor it drains, stops its services only after
        the supervisor's bye, then closes the channel.
        """
        reactor = MemoryReactorClock()
        ours, theirs = channelPair()
        supervisorSide = Receiver()
        channel = ControlChannel(reactor, ours, supervisorSide)
        self.addCleanup(channel.close)
        service = Service()
        config = WorkerConfig(0, 1, "tests.unit.workers.test_units:_serviceFactory")
        _FACTORY_RESULT[:] = [service]
        runtime = WorkerRuntime(reactor, config, theirs)
        self.successResultOf(runtime.start())
        self.assertTrue(service.running)
        channel.doRead()
        self.assertIn("ready", [m["t"] for m, _ in supervisorSide.messages])
        stopped = runtime.stop()
        channel.doRead()
        self.assertEqual(supervisorSide.messages[-1][0], {"t": "draining"})
        self.assertTrue(service.running)
        channel.send({"t": "bye"})
        assert runtime.channel is not None
        runtime.channel.doRead()
        self.successResultOf(stopped)
        self.assertFalse(service.running)
        self.assertIsNone(runtime.channel)

    def test_startFails(self) -> None:
        """
        A factory that cannot be loaded makes the worker exit with status 3,
        logged.
        """
        reactor = MemoryReactorClock()
        ours, theirs = channelPair()
        self.addCleanup(ours.close)
        runtime = WorkerRuntime(reactor, WorkerConfig(0, 1, "no.such.module:f"), theirs)
        self.successResultOf(runtime.start())
        self.assertEqual(runtime.exitCode, 3)
        self.assertEqual(len(self.flushLoggedErrors(ConfigError)), 1)
        runtime.stop()


_FACTORY_RESULT: list[Any] = []


def _serviceFactory(options: dict, sockets: Any, reactor: Any) -> Any:
    """
    The worker factory of L{RuntimeTests}.
    """
    return _FACTORY_RESULT[0]
