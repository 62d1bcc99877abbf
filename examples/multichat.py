"""
One chat room served over TCP, WebSocket and UDP at once, by one listener.

Every transport carries the same text lines (UTF-8, each ending in a
newline) with the same codec, L{txgetty.LineCodec}: a TCP connection is a
stream of lines; a WebSocket binary message and a UDP datagram each hold
one or more whole lines.  Every member sees every line said in the room, on
whichever transport it was said, their own lines included.  What the first
member, on TCP, sees::

    * welcome to multichat; you are tcp1 (commands: /nick NAME, /who, /quit)
    * ws2 joined via ws
    <ws2> hello from a browser
    <tcp1> hello from a terminal

Lines starting with C{/} are commands: C{/nick NAME} changes your nickname,
C{/who} lists the members and their transports, C{/quit} leaves.  A line
longer than the room's C{maxLineLength} is refused with a notice.

UDP has no connections: a peer joins with its first datagram and leaves
after C{udpIdleTimeout} seconds without one (an empty line keeps it in the
room without saying anything).  Datagrams can be lost; nothing resends
them.

Run it as a script (the browser page of C{examples/web} is served on the
WebSocket port)::

    python examples/multichat.py --tcp-port 8090 --ws-port 8080 --udp-port 8090

or, from the C{examples} directory, under twistd::

    twistd -n txgetty --app multichat:newSession \\
        --listen tcp:8090:interface=127.0.0.1 \\
        --listen "ws://127.0.0.1:8080/chat?static=web" \\
        --listen udp:8090:interface=127.0.0.1

then open http://127.0.0.1:8080/ in a browser, or use C{nc 127.0.0.1 8090}
(TCP) and C{nc -u 127.0.0.1 8090} (UDP: the same number as TCP, another
protocol).

Importing this module has no side effect: it neither imports the global
reactor nor listens anywhere.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.logger import Logger

from txgetty import (
    ConnectionClosedLocally,
    EventListener,
    ISession,
    LineCodec,
    PacketTooLargeError,
    PeerIdleError,
    ReadIdleTimeoutError,
    Server,
    SessionConfig,
    WebSocketClosedError,
)

log = Logger()

NICK = re.compile(r"[A-Za-z0-9_\-]{1,20}\Z")
COMMANDS = "/nick NAME, /who, /quit"

#: The directory of the browser page, served on the WebSocket port.
WEB = Path(__file__).resolve().parent / "web"

#: One codec object serves every session of every transport: LineCodec keeps
#: its per-session state in C{session.readerState}.
LINES = LineCodec()

#: A session's C{maxMsgLen} is C{maxLineLength + SLACK}: over WebSocket the
#: limit counts the whole message, CR LF included.  A line that is too long
#: but within that is refused politely by C{onMessage}; more than that (a
#: peer that sends no line end) closes the session.
SLACK = 2


def transportOf(session: ISession) -> str:
    """
    @param session: a session of any transport.
    @return: C{"tcp"}, C{"ws"}, C{"wss"}, C{"udp"}, C{"tls"} or
        C{"unix"}: the first part of the session's name (C{"ws-session"}).
    """
    return (session.name or "session").split("-")[0]


class MultiChat(EventListener):
    """
    One chat room: the listener of every session, whatever its transport,
    and their new-session callback.

    @ivar maxLineLength: the longest line accepted, in bytes.
    @ivar udpIdleTimeout: seconds without a datagram after which a UDP peer
        leaves the room.
    @ivar members: the sessions in the room, mapped to their nicknames, in
        order of arrival.
    """

    def __init__(self, maxLineLength: int = 512, udpIdleTimeout: float = 60.0) -> None:
        """
        @param maxLineLength: the longest line accepted, in bytes.
        @param udpIdleTimeout: seconds of silence after which a UDP peer
            leaves (0: never, until the server stops).
        """
        self.maxLineLength = maxLineLength
        self.udpIdleTimeout = udpIdleTimeout
        self.members: dict[ISession, str] = {}

    def newSession(self, session: ISession) -> None:
        """
        The new-session callback of every transport: line framing, this room
        as the listener, the line limit and, for UDP peers, the idle timeout.

        @param session: the new session, connected but not yet open.
        """
        session.codec = LINES
        session.listener = self
        session.maxMsgLen = self.maxLineLength + SLACK
        if transportOf(session) == "udp":
            session.readIdleTimeout = self.udpIdleTimeout

    # -- helpers ----------------------------------------------------------------

    def broadcast(self, text: str) -> None:
        """
        Send a line to every member, on every transport.

        @param text: the line, without its newline.
        """
        for member in list(self.members):
            if not member.isClosed:
                member.writePkg(text)

    def who(self) -> str:
        """
        @return: the members as C{nick (transport)}, in order of arrival.
        """
        return ", ".join(f"{nick} ({transportOf(s)})" for s, nick in self.members.items())

    def rename(self, session: ISession, nick: str) -> None:
        """
        Give a member a new nickname if it is well formed and free, and tell
        the room; otherwise tell the member why not.

        @param session: the member.
        @param nick: the nickname asked for.
        """
        old = self.members[session]
        if not NICK.match(nick):
            session.writePkg("* a nickname is 1 to 20 letters, digits, _ or -")
        elif nick != old and nick in self.members.values():
            session.writePkg(f"* {nick} is taken")
        elif nick != old:
            self.members[session] = nick
            self.broadcast(f"* {old} is now {nick}")

    # -- listener ---------------------------------------------------------------

    def onOpen(self, session: ISession) -> None:
        """
        A new member: name it after its transport and session id, welcome
        it, tell the others.

        @param session: the new session.
        """
        kind = transportOf(session)
        nick = f"{kind}{session.id}"
        session.writePkg(f"* welcome to multichat; you are {nick} (commands: {COMMANDS})")
        self.broadcast(f"* {nick} joined via {kind}")
        self.members[session] = nick
        log.info("multichat: {nick} joined: {session!r}", nick=nick, session=session)

    def onMessage(self, session: ISession, pkg: bytes) -> None:
        """
        One line: a command, or something to say to the room.

        @param session: the sender.
        @param pkg: the line, without its line ending.
        """
        if len(pkg) > self.maxLineLength:
            session.writePkg(f"* line refused: {len(pkg)} bytes, the limit is {self.maxLineLength}")
            return
        line = pkg.decode("utf-8", "replace").strip()
        if not line:
            return
        nick = self.members[session]
        if not line.startswith("/"):
            self.broadcast(f"<{nick}> {line}")
            return
        command, _, argument = line.partition(" ")
        if command == "/who":
            session.writePkg(f"* here: {self.who()}")
        elif command == "/nick":
            self.rename(session, argument.strip())
        elif command == "/quit":
            session.writePkg("* bye")
            session.close()
        else:
            session.writePkg(f"* unknown command {command}; commands: {COMMANDS}")

    def onClose(self, session: ISession) -> None:
        """
        A member left: tell the room why, unless it was a clean close.

        @param session: the closed session.
        """
        nick = self.members.pop(session, None)
        if nick is None:
            return
        reason = session.closeReason
        if reason.check(ConnectionDone, ConnectionClosedLocally):
            why = ""
        elif reason.check(PeerIdleError):
            why = " (no datagram for too long)"
        elif reason.check(PacketTooLargeError):
            why = " (line too long)"
        elif reason.check(ReadIdleTimeoutError):
            why = " (idle for too long)"
        elif reason.check(WebSocketClosedError):
            why = f" (WebSocket closed, code {reason.value.code})"
        else:
            why = f" ({reason.getErrorMessage()})"
        self.broadcast(f"* {nick} left{why}")
        log.info("multichat: {nick} left: {stat}", nick=nick, stat=session.stat())


#: The room served by C{twistd txgetty --app multichat:newSession}.
room = MultiChat()

#: The new-session callback of L{room}.
newSession = room.newSession


def listenDescriptions(args: argparse.Namespace) -> list[str]:
    """
    @param args: the options from L{parseArguments}.
    @return: the TCP, WebSocket and UDP listener descriptions, in that
        order.
    """
    web = "" if args.no_web else f"?static={quote(str(args.web))}"
    return [
        f"tcp:{args.tcp_port}:interface={args.interface}",
        f"ws://{args.interface}:{args.ws_port}{args.ws_path}{web}",
        f"udp:{args.udp_port}:interface={args.interface}",
    ]


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    """
    @param argv: the command line without the program name; C{sys.argv[1:]}
        if C{None}.
    @return: the parsed options.
    @raise SystemExit: the command line is wrong (argparse prints why).
    """
    parser = argparse.ArgumentParser(description="txgetty chat room over TCP, WebSocket and UDP at once")
    parser.add_argument("--interface", default="127.0.0.1", help="IPv4 address to listen on; default 127.0.0.1")
    parser.add_argument("--tcp-port", type=int, default=8090, help="TCP port (0: any free port); default 8090")
    parser.add_argument("--ws-port", type=int, default=8080, help="WebSocket port (0: any free port); default 8080")
    parser.add_argument("--udp-port", type=int, default=8090, help="UDP port (0: any free port); default 8090")
    parser.add_argument("--ws-path", default="/chat", help="WebSocket path; default /chat")
    parser.add_argument("--web", type=Path, default=WEB, help=f"directory of the browser page; default {WEB}")
    parser.add_argument("--no-web", action="store_true", help="serve no browser page on the WebSocket port")
    parser.add_argument("--max-line", type=int, default=512, help="longest line accepted, in bytes; default 512")
    parser.add_argument(
        "--udp-idle", type=float, default=60.0,
        help="seconds without a datagram after which a UDP peer leaves (0: never); default 60",
    )
    args = parser.parse_args(argv)
    for name in ("tcp_port", "ws_port", "udp_port"):
        if not 0 <= getattr(args, name) <= 65535:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 65535")
    if not args.ws_path.startswith("/") or args.ws_path.strip("/") == "":
        parser.error("--ws-path must start with / and name a path, e.g. /chat")
    if args.max_line < 1:
        parser.error("--max-line must be at least 1")
    if args.udp_idle < 0:
        parser.error("--udp-idle must be 0 or more")
    return args


async def main(reactor: Any, args: argparse.Namespace) -> None:
    """
    Serve one room on the three transports until the process is interrupted
    (Ctrl-C or SIGTERM).

    @param reactor: the running reactor.
    @param args: the options from L{parseArguments}.
    """
    chat = MultiChat(maxLineLength=args.max_line, udpIdleTimeout=args.udp_idle)
    # maxMsgLen in the server's config also caps UDP datagrams at the port.
    config = SessionConfig(maxMsgLen=args.max_line + SLACK)
    server = Server(listenDescriptions(args), chat.newSession, reactor=reactor, config=config)
    reactor.addSystemEventTrigger("before", "shutdown", server.stopService)
    server.startService()
    tcp, ws, udp = await server.whenListening()
    print(f"multichat: tcp {tcp.host}:{tcp.port}", flush=True)
    query = "" if args.ws_path == "/chat" else f"?path={quote(args.ws_path)}"
    page = "" if args.no_web else f" (browser page: http://{ws.host}:{ws.port}/{query})"
    print(f"multichat: ws://{ws.host}:{ws.port}{args.ws_path}{page}", flush=True)
    print(f"multichat: udp {udp.host}:{udp.port}", flush=True)
    await Deferred()  # never fires: react() stops when the reactor stops


if __name__ == "__main__":
    from twisted.internet.task import react
    from twisted.logger import globalLogBeginner, textFileLogObserver

    arguments = parseArguments()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
    react(main, [arguments])
