"""
Running a worker supervisor (L{tests.support.workerapps}) as a real process group
in the tests, bounded in time: its log lines, its ready line, signals, and a
cleanup that kills the whole group (supervisor and workers).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from .workerapps import ROOT

#: The longest a supervisor may take to get ready, or to exit.
WAIT = 60.0


class SupervisorProcess(ProcessProtocol):
    """
    A supervisor process (C{python -m tests.support.workerapps JSON}) in its own
    process group.

    @ivar lines: its log lines so far.
    @ivar info: its C{SUPERVISOR-READY} JSON, once ready.
    @ivar status: its exit status, once ended (C{None} before, or if a
        signal ended it: see L{signalled}).
    """

    def __init__(self, args: dict[str, Any], argv: list[str] | None = None, cwd: str | None = None,
                 childFDs: dict[int, Any] | None = None) -> None:
        """
        @param args: the supervisor's JSON (see L{tests.support.workerapps}).
        @param argv: another command to run (it must start a process group
            of its own, e.g. with C{setsid}); it finds C{args} in
            C{$TXGETTY_TEST_SUPERVISOR}.
        @param cwd: its working directory (default: the checkout).
        @param childFDs: more descriptors to pass (child -> ours).
        """
        self.args = args
        self.argv = argv
        self.cwd = cwd or ROOT
        self.childFDs = childFDs or {}
        self.lines: list[str] = []
        self.info: dict[str, Any] | None = None
        self.status: int | None = None
        self.signalled: int | None = None
        self.ended: Deferred = Deferred()
        self._buffer = b""
        self._waits: list[tuple[re.Pattern, int, Deferred]] = []
        self.pid: int | None = None

    def start(self) -> Deferred:
        """
        @return: a L{Deferred} firing with the ready line's JSON.
        """
        self.spawn()
        return self.waitFor(r"SUPERVISOR-READY (.*)$").addCallback(self._ready)

    def spawn(self) -> None:
        """
        Start the process.
        """
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
                   PYTHONUNBUFFERED="1", TXGETTY_TEST_SUPERVISOR=json.dumps(self.args))
        argv = self.argv or [sys.executable, "-m", "tests.support.workerapps", json.dumps(self.args)]
        transport = reactor.spawnProcess(self, argv[0], argv, env=env, path=self.cwd,
                                         childFDs={0: "w", 1: "r", 2: "r", **self.childFDs})
        self.pid = transport.pid

    def _ready(self, match: re.Match) -> dict[str, Any]:
        self.info = json.loads(match.group(1))
        return self.info

    def port(self, group: str, index: int = 0) -> int:
        """
        @return: the port of a listener of the ready line.
        """
        assert self.info is not None
        return int(self.info["addresses"][group][index][1])

    def address(self, group: str, index: int = 0) -> Any:
        """
        @return: a bound address of the ready line (C{[host, port]} or a path).
        """
        assert self.info is not None
        return self.info["addresses"][group][index]

    def waitFor(self, pattern: str, after: int = 0, timeout: float = WAIT) -> Deferred:
        """
        @param pattern: a regular expression searched in each log line.
        @param after: only lines from this index on.
        @param timeout: seconds.
        @return: a L{Deferred} firing with the first match.
        """
        regex = re.compile(pattern)
        for line in self.lines[after:]:
            match = regex.search(line)
            if match:
                d: Deferred = Deferred()
                d.callback(match)
                return d
        d = Deferred()
        entry = (regex, after, d)
        self._waits.append(entry)

        def expired() -> None:
            if entry in self._waits:
                self._waits.remove(entry)
                d.errback(AssertionError(f"no log line matched {pattern!r} within {timeout:g} s; the log:\n"
                                         + "\n".join(self.lines[-60:])))

        call = reactor.callLater(timeout, expired)
        d.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return d

    def count(self, pattern: str) -> int:
        """
        @return: how many log lines so far match C{pattern}.
        """
        regex = re.compile(pattern)
        return sum(1 for line in self.lines if regex.search(line))

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            for entry in list(self._waits):
                regex, after, d = entry
                match = regex.search(line)
                if match and len(self.lines) > after:
                    self._waits.remove(entry)
                    d.callback(match)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.status = getattr(reason.value, "exitCode", None)
        self.signalled = getattr(reason.value, "signal", None)
        for regex, _, d in self._waits:
            d.errback(AssertionError(f"the supervisor ended before a line matched {regex.pattern!r}; the log:\n"
                                     + "\n".join(self.lines[-60:])))
        self._waits = []
        self.ended.callback(self.status)

    @property
    def running(self) -> bool:
        """
        The supervisor process has not ended.
        """
        return not self.ended.called

    def signal(self, name: str) -> None:
        """
        @param name: C{"HUP"}, C{"TERM"}, ... sent to the supervisor only.
        """
        assert self.pid is not None
        os.kill(self.pid, getattr(signal, f"SIG{name}"))

    def waitForEnd(self, timeout: float = WAIT) -> Deferred:
        """
        @return: a L{Deferred} firing with the exit status, or failing if the
            supervisor runs on after C{timeout} seconds.
        """
        d: Deferred = Deferred()

        def ended(status: Any) -> Any:
            if call.active():
                call.cancel()
                d.callback(status)
            return status

        def expired() -> None:
            d.errback(AssertionError(f"the supervisor did not exit within {timeout:g} s; the log:\n"
                                     + "\n".join(self.lines[-60:])))

        call = reactor.callLater(timeout, expired)
        self.ended.addCallback(ended)
        return d

    def killGroup(self) -> Deferred | None:
        """
        Kill the supervisor and its workers (the process group), for
        cleanups.

        @return: a L{Deferred} firing once the supervisor is reaped, or
            C{None} if it already was.
        """
        if self.pid is None:
            return None
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.running:
            d: Deferred = Deferred()
            self.ended.addBoth(lambda r: d.callback(None))
            return d
        return None

    def workerPids(self) -> list[int]:
        """
        @return: the pids of the workers started so far (from the log).
        """
        return [int(m) for m in re.findall(r"started worker \d+ \(pid (\d+)\)", "\n".join(self.lines))]


def processExists(pid: int) -> bool:
    """
    @return: whether a process (not a zombie) has the pid.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class TapWorkers(SupervisorProcess):
    """
    C{twistd -n txgetty --workers N} in a process group of its own, serving
    the test echo (C{--app}, group C{listen}) and the C{Work} service
    (C{--service}, group C{rpc-listen}) of L{tests.support.workerapps} on
    127.0.0.1 port 0.

    @ivar ports: the bound port of C{listen} and of C{rpc-listen}, once ready.
    @ivar pids: the first workers' pids, once ready.
    """

    def __init__(self, workers: int, *extra: str, env: dict[str, str] | None = None, runner: str = "twistd") -> None:
        """
        @param workers: C{--workers}.
        @param extra: more C{txgetty} arguments.
        @param env: more environment variables.
        @param runner: C{"twistd"} or C{"twist"}.
        """
        command = os.path.join(os.path.dirname(sys.executable), runner)
        start = [command, "-n", "--pidfile=", "--logfile=-"] if runner == "twistd" else [command, "--log-file=-", "--log-format=text"]
        argv = ["/usr/bin/setsid", *start, "txgetty", "--workers", str(workers),
                "--listen", "tcp:0:interface=127.0.0.1", "--rpc-listen", "tcp:0:interface=127.0.0.1",
                "--app", "tests.support.workerapps:newSession", "--service", "Work=tests.support.workerapps:TapWork",
                *extra]
        super().__init__({}, argv)
        self.workers = workers
        self.env = env or {}
        self.ports: dict[str, int] = {}
        self.pids: list[int] = []

    def spawn(self) -> None:
        """
        Start twistd (with L{env}).
        """
        saved = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        try:
            super().spawn()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    async def startAll(self) -> TapWorkers:
        """
        Start, and wait until every worker is ready.

        @return: this.
        """
        self.spawn()
        for index in range(self.workers):
            await self.waitFor(rf"txgetty workers: worker {index} \(pid \d+\) is ready")
        log = "\n".join(self.lines)
        self.ports["listen"] = int(re.findall(r"txgetty: listening on tcp:127\.0\.0\.1:(\d+)", log)[0])
        self.ports["rpc-listen"] = int(re.findall(r"txgetty rpc: listening on tcp:127\.0\.0\.1:(\d+)", log)[0])
        self.pids = self.workerPids()
        return self
