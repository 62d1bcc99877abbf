"""
The write water marks of a session: whether it is writable, how the
buffer of its transport is watched, and the state of the check that runs
while it is unwritable (what L{FlowMixin <txgetty.session.flow.FlowMixin>}
acts on: C{writeHighMark}, C{writeLowMark}, C{writeTimeout}).
"""

from __future__ import annotations

from typing import Any


class WriteMarks:
    """
    The write side's state of one session: whether it is writable (under
    C{writeHighMark}, or back under C{writeLowMark}), how its transport's
    buffer is watched, and the check that runs while it is unwritable.

    @ivar writable: C{False} from passing C{writeHighMark} until the bytes
        waiting are back under C{writeLowMark}.
    @ivar poll: C{False} while a write watch (a push producer) tells the
        session; C{True} to poll the pending bytes after each write; else the
        transport whose buffer is read directly after each write.
    @ivar through: C{True} on a TCP or UNIX socket transport, whose writes
        go straight to the socket while its buffer is empty
        (L{writeThrough <txgetty.transports.sockets.writeThrough>}).
    @ivar later: C{True} while the write watch of such a transport waits
        for the first write that leaves bytes in its buffer.
    @ivar check: the delayed call of the next check while unwritable, or
        C{None}.
    @ivar stallSince: when the peer last took bytes while unwritable.
    @ivar taken: the bytes the kernel had taken by then.
    """

    __slots__ = ("writable", "poll", "through", "later", "check", "stallSince", "taken")

    def __init__(self) -> None:
        self.writable = True
        self.poll: Any = False
        self.through = False
        self.later = False
        self.check: Any = None
        self.stallSince = 0.0
        self.taken = 0

    def stopChecking(self) -> None:
        """
        Cancel the check of an unwritable session, if one is due.
        """
        check, self.check = self.check, None
        if check is not None and check.active():
            check.cancel()
