"""
An echo server: every packet a client sends is written back to it.

Run it as a script (getty's hello framing: a 4-byte little-endian length,
then the payload)::

    python examples/echo_server.py --port 8090
    python examples/echo_server.py --port 8090 --codec line

or under twistd, whose C{--codec} option it respects::

    PYTHONPATH=examples twistd -n txgetty --app echo_server:newSession
    PYTHONPATH=examples twistd -n txgetty --app echo_server:newSession --codec line

Importing this module has no side effect: it neither imports the global
reactor nor listens anywhere.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from txgetty import EventListener, HelloCodec, ISession, Server, codecFromString

log = Logger()


class Echo(EventListener):
    """
    Writes every packet back to its sender and logs each session's counters
    when it ends.
    """

    def onOpen(self, session: ISession) -> None:
        """
        @param session: the session that opened.
        """
        log.info("echo: {session!r} open", session=session)

    def onMessage(self, session: ISession, pkg: Any) -> None:
        """
        @param session: the session the packet came from.
        @param pkg: the packet, written back unchanged.
        """
        session.writePkg(pkg)

    def onClose(self, session: ISession) -> None:
        """
        @param session: the session that closed.
        """
        log.info(
            "echo: {stat}; closed: {why}",
            stat=session.stat(),
            why=session.closeReason.getErrorMessage(),
        )


#: One listener serves every session: it keeps no per-session state.
ECHO = Echo()


def newSession(session: ISession) -> None:
    """
    The new-session callback: give the session a codec and the listener.

    Under C{twistd txgetty --app echo_server:newSession} the session already
    has the codec named by C{--codec}, which is kept; otherwise the session
    gets getty's hello framing.

    @param session: the new session, connected but not yet open.
    """
    if session.codec is None:
        session.codec = HelloCodec()
    session.listener = ECHO


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    """
    @param argv: the command line without the program name; C{sys.argv[1:]}
        if C{None}.
    @return: the parsed options.
    @raise SystemExit: the command line is wrong (argparse prints why).
    """
    parser = argparse.ArgumentParser(description="txgetty echo server")
    parser.add_argument("--port", type=int, default=8090, help="TCP port (0: any free port); default 8090")
    parser.add_argument("--interface", default="127.0.0.1", help="address to listen on; default 127.0.0.1")
    parser.add_argument(
        "--codec", default="hello",
        help="hello, length:SIZE[:big|little], line, delimiter:HEX or raw; default hello",
    )
    args = parser.parse_args(argv)
    try:
        codecFromString(args.codec)
    except ValueError as e:
        parser.error(str(e))
    return args


async def main(reactor: Any, args: argparse.Namespace) -> None:
    """
    Serve until the process is interrupted (Ctrl-C or SIGTERM).

    @param reactor: the running reactor.
    @param args: the options from L{parseArguments}.
    """
    codec = codecFromString(args.codec)

    def scriptSession(session: ISession) -> None:
        """
        Give the session the codec of C{--codec}, then run L{newSession}.

        @param session: the new session.
        """
        session.codec = codec
        newSession(session)

    server = Server([f"tcp:{args.port}:interface={args.interface}"], scriptSession, reactor=reactor)
    reactor.addSystemEventTrigger("before", "shutdown", server.stopService)
    server.startService()
    addresses = await server.whenListening()
    for address in addresses:
        print(f"echo server listening on tcp:{address.host}:{address.port}", flush=True)
    await Deferred()  # never fires: react() stops when the reactor stops


if __name__ == "__main__":
    from twisted.internet.task import react
    from twisted.logger import globalLogBeginner, textFileLogObserver

    arguments = parseArguments()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
    react(main, [arguments])
