"""
A line-based chat server on L{txgetty.codec.LineCodec}.

Every line a client sends is a packet.  The first line is the client's
nickname; after that, lines are said to everybody else in the room, except
commands:

    - C{/nick NAME}: change nickname;
    - C{/who}: list who is here, in order of arrival;
    - C{/quit}: leave.

Lines from the server start with C{*} (notices) or C{<nick>} (what someone
said).  A line longer than the room's C{maxLineLength} closes its sender's
session (the session's C{maxMsgLen} refuses it); with C{idleTimeout} set, a
client that sends nothing for that long is closed too.  Either way the others
see a leave notice with the reason.

Run it as a script::

    python examples/chat_server.py --port 8090 --max-line 512 --idle-timeout 300

or under twistd (the room then uses its defaults: 512-byte lines, and
twistd's C{--read-idle-timeout} for idle clients)::

    PYTHONPATH=examples twistd -n txgetty --app chat_server:newSession

and chat with C{nc 127.0.0.1 8090} or C{telnet 127.0.0.1 8090}.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.logger import Logger

from txgetty import (
    CodecError,
    ConnectionClosedLocally,
    EventListener,
    ISession,
    LineCodec,
    PacketTooLargeError,
    ReadIdleTimeoutError,
    Server,
)

log = Logger()

NICK = re.compile(r"[A-Za-z0-9_\-]{1,20}\Z")
COMMANDS = "/nick NAME, /who, /quit"

#: LineCodec keeps its per-session scan state in C{session.readerState}, so one
#: instance serves every session.
LINES = LineCodec()


class LineWriter:
    """
    Writes text lines (UTF-8, ending in LF) of any length.

    L{LineCodec}'s own writer refuses packets longer than the session's
    C{maxMsgLen}.  Here C{maxMsgLen} limits what a client may send, and what
    the server sends is longer (C{"<nick> "} + a line, the C{/who} list), so
    sessions read with L{LineCodec} and write with this writer.
    """

    def write(self, session: ISession, pkg: str) -> bytes:
        """
        @param session: the session written to.
        @param pkg: one line of text, without its line ending.
        @return: the encoded line.
        @raise CodecError: the text contains a line break.
        """
        if "\n" in pkg:
            raise CodecError(f"a chat line cannot contain a line break: {pkg!r}")
        return pkg.encode("utf-8") + b"\n"


WRITER = LineWriter()


class ChatRoom(EventListener):
    """
    One chat room: the listener of every chat session, and its
    new-session callback.

    @ivar maxLineLength: the longest line accepted, in bytes (the sessions'
        C{maxMsgLen}).
    @ivar idleTimeout: seconds of silence before a client is closed; 0 keeps
        the session's own C{readIdleTimeout} (a server's default: 300 s).
    @ivar members: the sessions that chose a nickname, mapped to it, in order
        of arrival.
    """

    def __init__(self, maxLineLength: int = 512, idleTimeout: float = 0.0) -> None:
        """
        @param maxLineLength: the longest line accepted, in bytes.
        @param idleTimeout: seconds of silence before a client is closed
            (0: leave the session's setting alone).
        """
        self.maxLineLength = maxLineLength
        self.idleTimeout = idleTimeout
        self.members: dict[ISession, str] = {}

    def newSession(self, session: ISession) -> None:
        """
        The new-session callback: line framing, this room as the listener,
        the line limit and the idle timeout.

        @param session: the new session, connected but not yet open.
        """
        session.reader = LINES
        session.writer = WRITER
        session.listener = self
        session.maxMsgLen = self.maxLineLength
        if self.idleTimeout:
            session.readIdleTimeout = self.idleTimeout

    # -- helpers ----------------------------------------------------------------

    def broadcast(self, text: str, exclude: ISession | None = None) -> None:
        """
        Send a line to every member but one.

        @param text: the line, without its newline.
        @param exclude: the member not to send it to (usually the author).
        """
        for member in list(self.members):
            if member is not exclude and not member.isClosed:
                member.writePkg(text)

    def who(self) -> str:
        """
        @return: the nicknames of the members, in order of arrival.
        """
        return ", ".join(self.members.values())

    def _checkNick(self, session: ISession, nick: str) -> bool:
        """
        Tell the session why a nickname cannot be used, if it cannot.

        @param session: the session asking for it.
        @param nick: the nickname asked for.
        @return: whether C{nick} is free and well formed.
        """
        if not NICK.match(nick):
            session.writePkg("* a nickname is 1 to 20 letters, digits, _ or -; try again")
            return False
        if nick in self.members.values():
            session.writePkg(f"* {nick} is taken; try another nickname")
            return False
        return True

    # -- listener ---------------------------------------------------------------

    def onOpen(self, session: ISession) -> None:
        """
        Greet the client and ask for a nickname.

        @param session: the new session.
        """
        session.writePkg("* welcome to the txgetty chat; send your nickname")

    def onMessage(self, session: ISession, pkg: bytes) -> None:
        """
        Handle one line: a nickname, a command or something to say.

        @param session: the sender.
        @param pkg: the line, without its line ending.
        """
        line = pkg.decode("utf-8", "replace").strip()
        if not line:
            return
        nick = self.members.get(session)
        if nick is None:
            if self._checkNick(session, line):
                others = self.who()
                self.members[session] = line
                session.writePkg(f"* you are {line}; here: {others or 'nobody else'}")
                self.broadcast(f"* {line} joined", exclude=session)
            return
        if not line.startswith("/"):
            self.broadcast(f"<{nick}> {line}", exclude=session)
            return
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        if command == "/who":
            session.writePkg(f"* here: {self.who()}")
        elif command == "/nick":
            if argument != nick and self._checkNick(session, argument):
                self.members[session] = argument
                session.writePkg(f"* you are now {argument}")
                self.broadcast(f"* {nick} is now {argument}", exclude=session)
        elif command == "/quit":
            session.writePkg("* bye")
            session.close()
        else:
            session.writePkg(f"* unknown command {command}; commands: {COMMANDS}")

    def onClose(self, session: ISession) -> None:
        """
        Tell the others that a member left, and why if it was not a clean
        close.

        @param session: the closed session.
        """
        nick = self.members.pop(session, None)
        if nick is None:
            return
        reason = session.closeReason
        if reason.check(ConnectionDone, ConnectionClosedLocally):
            why = ""
        elif reason.check(PacketTooLargeError):
            why = f" (line longer than {self.maxLineLength} bytes)"
        elif reason.check(ReadIdleTimeoutError):
            why = " (idle for too long)"
        else:
            why = f" ({reason.getErrorMessage()})"
        self.broadcast(f"* {nick} left{why}")
        log.info("chat: {nick} left: {stat}", nick=nick, stat=session.stat())


#: The room served by C{twistd txgetty --app chat_server:newSession}.
room = ChatRoom()

#: The new-session callback of L{room}.
newSession = room.newSession


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    """
    @param argv: the command line without the program name; C{sys.argv[1:]}
        if C{None}.
    @return: the parsed options.
    @raise SystemExit: the command line is wrong (argparse prints why).
    """
    parser = argparse.ArgumentParser(description="txgetty line-based chat server")
    parser.add_argument("--port", type=int, default=8090, help="TCP port (0: any free port); default 8090")
    parser.add_argument("--interface", default="127.0.0.1", help="address to listen on; default 127.0.0.1")
    parser.add_argument("--max-line", type=int, default=512, help="longest line accepted, in bytes; default 512")
    parser.add_argument(
        "--idle-timeout", type=float, default=0.0,
        help="close clients silent for this many seconds; default 0 (never)",
    )
    args = parser.parse_args(argv)
    if args.max_line < 1:
        parser.error("--max-line must be at least 1")
    if args.idle_timeout < 0:
        parser.error("--idle-timeout must be 0 or more")
    return args


async def main(reactor: Any, args: argparse.Namespace) -> None:
    """
    Serve one room until the process is interrupted (Ctrl-C or SIGTERM).

    @param reactor: the running reactor.
    @param args: the options from L{parseArguments}.
    """
    chat = ChatRoom(maxLineLength=args.max_line, idleTimeout=args.idle_timeout)
    server = Server([f"tcp:{args.port}:interface={args.interface}"], chat.newSession, reactor=reactor)
    reactor.addSystemEventTrigger("before", "shutdown", server.stopService)
    server.startService()
    addresses = await server.whenListening()
    for address in addresses:
        print(f"chat server listening on tcp:{address.host}:{address.port}", flush=True)
    await Deferred()  # never fires: react() stops when the reactor stops


if __name__ == "__main__":
    from twisted.internet.task import react
    from twisted.logger import globalLogBeginner, textFileLogObserver

    arguments = parseArguments()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
    react(main, [arguments])
