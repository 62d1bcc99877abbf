"""
One worker process as its supervisor sees it: the process (spawned with
its slot's sockets and the worker end of a control channel as child
descriptors), the control channel, its log lines, its timers, and what it
tells its slot (ready, exited, ready in time or not).
"""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, eventFromJSON, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from .channel import ControlChannel, IChannelReceiver, channelPair, encode
from .command import CONTROL_FD, IWorkerCommand, WorkerConfig

_log = Logger()

#: The longest line of a worker's stdout/stderr kept whole in the log.
MAX_LINE = 8192
#: The C{conn} packet of each listener, encoded once.
_CONN_PACKETS: dict[str, bytes] = {}


def describeExit(reason: Failure) -> str:
    """
    @param reason: the L{Failure} of C{processEnded} (L{ProcessDone
        <twisted.internet.error.ProcessDone>} or L{ProcessTerminated
        <twisted.internet.error.ProcessTerminated>}).
    @return: how the process ended: C{"exited with status 3"}, C{"was killed
        by SIGKILL"}.
    """
    value = reason.value
    number = getattr(value, "signal", None)
    if number:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"was killed by {name}"
    return f"exited with status {getattr(value, 'exitCode', None)}"


@implementer(IChannelReceiver)
class WorkerProcess(ProcessProtocol):
    """
    A worker process of one slot.

    @ivar slot: the slot's number.
    @ivar generation: the worker's number among all the supervisor started.
    @ivar pid: its process id, once spawned.
    @ivar readyAt: when it reported ready (clock seconds), or C{None}.
    @ivar exited: it ended.
    @ivar sent: connections handed to it.
    @ivar live: connections open in it, as it last reported.
    @ivar received: connections it had received when it reported that.
    """

    def __init__(self, owner: Any, slot: int, generation: int, reactor: Any,
                 observer: Callable[[dict], None] | None = None) -> None:
        """
        @param owner: told C{workerReady(worker)}, C{workerExited(worker,
            reason)}, C{workerTimedOut(worker)}, C{workerDraining(worker)}
            (its slot).
        @param slot: the slot's number.
        @param generation: unique per worker of a supervisor.
        @param reactor: spawns the process and runs the timers.
        @param observer: where the worker's log events are published (the
            global log publisher by default).
        """
        self.owner = owner
        self.slot = slot
        self.generation = generation
        self.reactor = reactor
        self.observer = observer or globalLogPublisher
        self.pid: int | None = None
        self.readyAt: float | None = None
        self.exited = False
        self.sent = self.live = self.received = 0
        self.channel: ControlChannel | None = None
        self._lines: dict[int, bytes] = {}
        self._timers: dict[str, Any] = {}

    @property
    def label(self) -> str:
        """
        How logs name the worker: C{"worker 1 (pid 1234)"}.
        """
        return f"worker {self.slot} (pid {self.pid})"

    # -- life ----------------------------------------------------------------

    def spawn(self, command: IWorkerCommand, config: WorkerConfig, childFDs: dict[int, int],
              readyTimeout: float) -> None:
        """
        Start the process.

        @param command: makes its command line and environment.
        @param config: its configuration (its channel descriptor is set
            here).
        @param childFDs: the slot's sockets, child descriptor -> ours.
        @param readyTimeout: seconds it has to report ready.
        @raise OSError: the process could not be started.
        """
        ours, theirs = channelPair()
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            config.control = CONTROL_FD
            executable, args, env = command.spawnArguments(config)
            fds: dict[int, Any] = {0: devnull, 1: "r", 2: "r", CONTROL_FD: theirs.fileno(), **childFDs}
            transport = self.reactor.spawnProcess(self, executable, args, env=env, childFDs=fds)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(devnull)
        self.pid = transport.pid
        self.channel = ControlChannel(self.reactor, ours, self, f"of worker {self.slot} (pid {self.pid})")
        self.channel.start()
        self._later("ready", readyTimeout, self.owner.workerTimedOut, self)

    def _later(self, name: str, seconds: float, f: Callable[..., Any], *args: Any) -> None:
        """
        Start (or restart) the timer C{name}.
        """
        self._cancel(name)
        self._timers[name] = self.reactor.callLater(seconds, self._fire, name, f, *args)

    def _fire(self, name: str, f: Callable[..., Any], *args: Any) -> None:
        """
        A timer fired.
        """
        self._timers.pop(name, None)
        f(*args)

    def _cancel(self, name: str) -> None:
        """
        Cancel the timer C{name}, if it runs.
        """
        call = self._timers.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def terminate(self, killAfter: float | None = None) -> None:
        """
        Ask the worker to drain and exit (SIGTERM).

        @param killAfter: send SIGKILL if it is still running after this many
            seconds (C{None}: never).
        """
        self._signal("TERM")
        if killAfter is not None and not self.exited:
            self._later("kill", killAfter, self._drainTimedOut, killAfter)

    def _drainTimedOut(self, seconds: float) -> None:
        """
        The worker did not exit in time after SIGTERM.
        """
        _log.warn("txgetty workers: worker {worker} (pid {pid}) did not exit within {timeout:g} s of SIGTERM "
                  "(drainTimeout); killing it", worker=self.slot, pid=self.pid, timeout=seconds)
        self.kill()

    def kill(self) -> None:
        """
        End the worker at once (SIGKILL).
        """
        self._signal("KILL")

    def _signal(self, name: str) -> None:
        """
        Send a signal, unless the process is gone.
        """
        if self.exited or self.transport is None:
            return
        try:
            self.transport.signalProcess(name)
        except (ProcessExitedAlready, OSError):
            pass

    def sendConnection(self, listenerId: str, fd: int) -> bool:
        """
        Hand an accepted connection over (the descriptor is closed here once
        sent).

        @param listenerId: its listener.
        @param fd: its descriptor.
        @return: whether it went or is queued; C{False}: the channel is lost
            (the worker died), the caller still owns the descriptor.
        """
        packet = _CONN_PACKETS.get(listenerId)
        if packet is None:
            packet = _CONN_PACKETS[listenerId] = encode({"t": "conn", "l": listenerId})
        if self.channel is None or not self.channel.send(packet, [fd], closeFds=True):
            return False
        self.sent += 1
        return True

    @property
    def load(self) -> int:
        """
        Connections open in the worker: the last report plus those handed
        over since.
        """
        return self.live + self.sent - self.received

    # -- ProcessProtocol -----------------------------------------------------

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        """
        Log the worker's stdout (info) and stderr (warn) line by line.

        @param childFD: 1 or 2.
        @param data: bytes it wrote.
        """
        buffered = self._lines.get(childFD, b"") + data
        *lines, rest = buffered.split(b"\n")
        if len(rest) > MAX_LINE:
            lines.append(rest)
            rest = b""
        self._lines[childFD] = rest
        for line in lines:
            self._logLine(childFD, line)

    def _logLine(self, childFD: int, line: bytes) -> None:
        """
        Log one line a worker wrote.
        """
        emit = _log.warn if childFD == 2 else _log.info
        emit("worker {worker} (pid {pid}) {stream}: {line}", worker=self.slot, pid=self.pid,
             stream="stderr" if childFD == 2 else "stdout", line=line.decode("utf-8", "replace").rstrip("\r"),
             log_system=self._system())

    def _system(self) -> str:
        """
        @return: the C{log_system} of the worker's events.
        """
        return f"worker {self.slot} pid {self.pid}"

    def processEnded(self, reason: Failure) -> None:
        """
        The process is gone: flush its last lines, close the channel, tell
        the slot.

        @param reason: how it ended.
        """
        self.exited = True
        for name in list(self._timers):
            self._cancel(name)
        for childFD, rest in sorted(self._lines.items()):
            if rest:
                self._logLine(childFD, rest)
        self._lines = {}
        if self.channel is not None:
            self._drainChannel()
            self.channel.close()
        self.owner.workerExited(self, reason)

    def _drainChannel(self) -> None:
        """
        Read what the worker sent before it ended (its last log lines).
        """
        assert self.channel is not None
        if not self.channel.lost:
            self.channel.doRead()

    # -- IChannelReceiver ----------------------------------------------------

    def messageReceived(self, message: dict, fds: list[int]) -> None:
        """
        @param message: from the worker.
        @param fds: none are expected (closed).
        """
        for fd in fds:
            os.close(fd)
        kind = message.get("t")
        if kind == "log":
            self._publish(message.get("event"))
        elif kind == "load":
            self.live, self.received = int(message.get("live", 0)), int(message.get("received", 0))
        elif kind == "ready":
            self._cancel("ready")
            self.owner.workerReady(self)
        elif kind == "draining":
            self.owner.workerDraining(self)
            if self.channel is not None:
                self.channel.send({"t": "bye"})
        else:
            _log.warn("txgetty workers: worker {worker} (pid {pid}) sent an unknown control message {message!r}",
                      worker=self.slot, pid=self.pid, message=message)

    def _publish(self, text: Any) -> None:
        """
        Publish a worker's log event, named after the worker.
        """
        try:
            event = eventFromJSON(text)
        except Exception:
            _log.warn("txgetty workers: worker {worker} (pid {pid}) sent a log event that is not JSON: {text!r}",
                      worker=self.slot, pid=self.pid, text=text)
            return
        event["log_system"] = self._system()
        event.setdefault("worker", self.slot)
        event.setdefault("pid", self.pid)
        self.observer(event)

    def channelLost(self, reason: Failure) -> None:
        """
        The channel closed (the process ends, or ended): no more
        connections for it.

        @param reason: why.
        """
        self.channel = None
        if not self.exited:
            self.owner.workerDraining(self)
