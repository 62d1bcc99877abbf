"""
Ready-made packet codecs: length-prefixed (getty's hello format among them),
delimiter/line based, and raw bytes.

Each is an L{ICodec}.  Besides the one-packet C{read} of the getty contract
they offer C{readPackets}, which cuts every complete packet out of a buffer in
one loop; sessions use it when a reader has it.  Packets are C{bytes}; the
writers also accept C{bytearray}, C{memoryview} and C{str} (sent as UTF-8).
"""

from __future__ import annotations

from struct import Struct
from typing import Any

from zope.interface import implementer

from .errors import CodecError, ConfigError, PacketTooLargeError
from .interfaces import ICodec, ISession

_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}
_ORDERS = {"big": ">", "little": "<"}


def _asBytes(pkg: Any) -> bytes:
    """
    @param pkg: a packet handed to a writer.
    @return: its bytes.
    @raise TypeError: it is not bytes-like or text.
    """
    if isinstance(pkg, bytes):
        return pkg
    if isinstance(pkg, (bytearray, memoryview)):
        return bytes(pkg)
    if isinstance(pkg, str):
        return pkg.encode("utf-8")
    raise TypeError(
        f"this codec writes bytes, bytearray, memoryview or str packets, not "
        f"{type(pkg).__name__}; use a codec of your own for other packet types"
    )


@implementer(ICodec)
class LengthPrefixedCodec:
    """
    A packet is a fixed-size unsigned length followed by that many payload
    bytes; the packet handed to C{onMessage} is the payload.

    C{session.maxMsgLen} limits the payload (the declared length); with
    C{countHeader} it limits header and payload together, as getty's
    session does with the length its reader returns (its hello framing
    refuses C{pkgLen + 4 > maxMsgLen}).

    @ivar size: header size in bytes (1, 2, 4 or 8).
    @ivar byteorder: C{"big"} or C{"little"}.
    @ivar countHeader: whether the header counts in C{maxMsgLen}.
    """

    def __init__(self, size: int = 4, byteorder: str = "big", countHeader: bool = False) -> None:
        """
        @param size: header size in bytes: 1, 2, 4 or 8.
        @param byteorder: C{"big"} (network order) or C{"little"}.
        @param countHeader: count the header in C{maxMsgLen} (getty's rule).
        @raise ConfigError: either value is not one of those.
        """
        if size not in _FORMATS:
            raise ConfigError(f"length header size must be 1, 2, 4 or 8 bytes, got {size!r}")
        if byteorder not in _ORDERS:
            raise ConfigError(f"byteorder must be 'big' or 'little', got {byteorder!r}")
        if not isinstance(countHeader, bool):
            raise ConfigError(f"countHeader must be True or False, got {countHeader!r}")
        self.size = size
        self.byteorder = byteorder
        self.countHeader = countHeader
        self._struct = Struct(_ORDERS[byteorder] + _FORMATS[size])
        self._pack = self._struct.pack
        self._unpackFrom = self._struct.unpack_from
        self._headerMax = (1 << (8 * size)) - 1

    def __repr__(self) -> str:
        extra = ", countHeader=True" if self.countHeader else ""
        return f"LengthPrefixedCodec(size={self.size}, byteorder={self.byteorder!r}{extra})"

    def _tooLarge(self, length: int, limit: int) -> PacketTooLargeError:
        """
        @param length: a declared payload length above the limit.
        @param limit: the session's C{maxMsgLen}.
        @return: the error to raise.
        """
        if not self.countHeader:
            return PacketTooLargeError(length, limit)
        total = self.size + length
        return PacketTooLargeError(
            total, limit, what=f"packet of {total} bytes ({self.size}-byte header included, countHeader)"
        )

    def read(self, session: ISession, data: bytearray) -> tuple[Any, int]:
        """
        Read one packet (getty's contract, see L{IReader.read}).

        @param session: the session, for its C{maxMsgLen}.
        @param data: unconsumed bytes.
        @return: C{(None, 0)}, C{(None, total)} or C{(payload, total)}.
        @raise PacketTooLargeError: the declared length is above
            C{session.maxMsgLen}.
        """
        size = self.size
        if len(data) < size:
            return None, 0
        (length,) = self._struct.unpack_from(data, 0)
        if length > session.maxMsgLen - (size if self.countHeader else 0):
            raise self._tooLarge(length, session.maxMsgLen)
        total = size + length
        if len(data) < total:
            return None, total
        return bytes(data[size:total]), total

    def readPackets(self, session: ISession, buf: bytearray, out: list) -> int:
        """
        Cut every complete packet from the front of C{buf} into C{out}.

        @param session: the session, for its C{maxMsgLen}.
        @param buf: the session's buffer; consumed packets are removed from
            it, even when this raises.
        @param out: the list the payloads are appended to.
        @return: how many bytes C{buf} must hold before another call can
            produce a packet (0 when C{buf} is empty).
        @raise PacketTooLargeError: a declared length is above
            C{session.maxMsgLen} (less the header with C{countHeader}); the
            packets before it are in C{out}.
        """
        size = self.size
        unpack = self._unpackFrom
        limit = session.maxMsgLen - (size if self.countHeader else 0)
        n = len(buf)
        if n > size:
            (length,) = unpack(buf, 0)
            if n == size + length and length <= limit:
                # Exactly one packet: a request/response peer's every read.
                out.append(bytes(buf[size:]))
                buf.clear()
                return 0
        append = out.append
        off = 0
        view = memoryview(buf)
        try:
            while n - off >= size:
                (length,) = unpack(view, off)
                if length > limit:
                    raise self._tooLarge(length, session.maxMsgLen)
                end = off + size + length
                if end > n:
                    return end - off
                append(view[off + size:end].tobytes())
                off = end
            return size if off < n else 0
        finally:
            view.release()
            if off:
                del buf[:off]

    def write(self, session: ISession, pkg: Any) -> bytes:
        """
        Prefix a payload with its length.  (C{maxMsgLen} limits what is read,
        as in getty, not what is written.)

        @param session: the session.
        @param pkg: the payload (bytes-like or C{str}).
        @return: header and payload.
        @raise PacketTooLargeError: the payload is longer than the header can
            express.
        """
        data = pkg if type(pkg) is bytes else _asBytes(pkg)
        n = len(data)
        if n > self._headerMax:
            raise PacketTooLargeError(n, self._headerMax, f"header size ({self.size} bytes)")
        return self._pack(n) + data


def HelloCodec(countHeader: bool = False) -> LengthPrefixedCodec:
    """
    getty's hello demo framing: a 4-byte little-endian length, then the
    payload.

    @param countHeader: count the 4-byte header in C{maxMsgLen}, as getty
        does (C{pkgLen + 4 > maxMsgLen} is refused), for limits identical
        to a getty peer's.
    @return: a L{LengthPrefixedCodec} for it.
    """
    return LengthPrefixedCodec(4, "little", countHeader)


@implementer(ICodec)
class DelimiterCodec:
    """
    A packet is the bytes before a delimiter; the delimiter is not part of the
    packet.  The scan position is kept in C{session.readerState}, so a long
    packet arriving in small pieces is scanned once.

    @ivar delimiter: the delimiter bytes.
    """

    def __init__(self, delimiter: bytes = b"\n") -> None:
        """
        @param delimiter: one or more bytes that end every packet.
        @raise ConfigError: the delimiter is empty or not bytes.
        """
        if not isinstance(delimiter, bytes) or not delimiter:
            raise ConfigError(f"delimiter must be non-empty bytes, got {delimiter!r}")
        self.delimiter = delimiter

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.delimiter!r})"

    def _find(self, session: ISession, data: bytearray, start: int) -> int:
        """
        @param session: the session, for its limit and scan state.
        @param data: the buffer.
        @param start: where the current packet starts in C{data}.
        @return: the index of the next delimiter at or after C{start}, or -1
            (then C{readerState} remembers how far the scan got).
        @raise PacketTooLargeError: more than C{maxMsgLen} bytes and no
            delimiter.
        """
        scanned = session.readerState or 0
        i = data.find(self.delimiter, start + scanned)
        limit = session.maxMsgLen
        if i < 0:
            pending = len(data) - start
            if pending > limit + len(self.delimiter) - 1:
                raise PacketTooLargeError(pending, limit)
            session.readerState = max(0, pending - len(self.delimiter) + 1)
            return -1
        session.readerState = None
        if i - start > limit:
            raise PacketTooLargeError(i - start, limit)
        return i

    def read(self, session: ISession, data: bytearray) -> tuple[Any, int]:
        """
        Read one packet (see L{IReader.read}).

        @param session: the session.
        @param data: unconsumed bytes.
        @return: C{(None, 0)} or C{(packet, bytes used)}.
        @raise PacketTooLargeError: no delimiter within C{maxMsgLen} bytes.
        """
        i = self._find(session, data, 0)
        if i < 0:
            return None, 0
        return self._packet(bytes(data[:i])), i + len(self.delimiter)

    def readPackets(self, session: ISession, buf: bytearray, out: list) -> int:
        """
        Cut every complete packet from the front of C{buf} into C{out}.

        @param session: the session.
        @param buf: the session's buffer; consumed bytes are removed.
        @param out: the list packets are appended to.
        @return: 0 (the length of the next packet is unknown).
        @raise PacketTooLargeError: no delimiter within C{maxMsgLen} bytes.
        """
        off = 0
        step = len(self.delimiter)
        try:
            while True:
                i = self._find(session, buf, off)
                if i < 0:
                    return 0
                out.append(self._packet(bytes(buf[off:i])))
                off = i + step
        finally:
            if off:
                del buf[:off]

    def _packet(self, data: bytes) -> bytes:
        """
        @param data: the bytes before a delimiter.
        @return: the packet made of them.
        """
        return data

    def write(self, session: ISession, pkg: Any) -> bytes:
        """
        Append the delimiter to a packet.

        @param session: the session.
        @param pkg: the packet (bytes-like or C{str}).
        @return: the packet and the delimiter.
        @raise CodecError: the packet contains the delimiter.
        """
        data = _asBytes(pkg)
        if self.delimiter in data:
            raise CodecError(f"packet contains the delimiter {self.delimiter!r}; it cannot be framed")
        return data + self.delimiter


class LineCodec(DelimiterCodec):
    """
    Text lines: packets end with C{b"\\n"}; a C{b"\\r"} before it is dropped
    on reading, so both LF and CRLF peers work.  Lines are written with LF.
    """

    def __init__(self) -> None:
        """
        A codec for LF or CRLF terminated lines.
        """
        super().__init__(b"\n")

    def __repr__(self) -> str:
        return "LineCodec()"

    def _packet(self, data: bytes) -> bytes:
        """
        @param data: a line without its LF.
        @return: the line without a trailing CR.
        """
        return data[:-1] if data.endswith(b"\r") else data


@implementer(ICodec)
class RawCodec:
    """
    No framing: whatever bytes arrive form one packet (at most C{maxMsgLen}
    bytes each); packets are written as they are.
    """

    def __repr__(self) -> str:
        return "RawCodec()"

    def read(self, session: ISession, data: bytearray) -> tuple[Any, int]:
        """
        @param session: the session, for its C{maxMsgLen}.
        @param data: unconsumed bytes.
        @return: up to C{maxMsgLen} bytes as one packet.
        """
        if not data:
            return None, 0
        n = min(len(data), session.maxMsgLen)
        return bytes(data[:n]), n

    def readMessage(self, session: ISession, message: bytes, out: list) -> None:
        """
        Read one whole message of a message transport (WebSocket, UDP): it
        is the packet, as it is.

        @param session: the session, for its C{maxMsgLen}.
        @param message: the message.
        @param out: the list the packet is appended to.
        @raise PacketTooLargeError: the message is longer than C{maxMsgLen}.
        """
        if len(message) > session.maxMsgLen:
            raise PacketTooLargeError(len(message), session.maxMsgLen, what=f"a message of {len(message)} bytes")
        out.append(message)

    def write(self, session: ISession, pkg: Any) -> bytes:
        """
        @param session: unused.
        @param pkg: the bytes to send.
        @return: the same bytes.
        """
        return pkg if type(pkg) is bytes else _asBytes(pkg)


_CODEC_HELP = (
    "hello (4-byte little-endian length, getty's demo), "
    "length:SIZE[:big|little] (SIZE 1, 2, 4 or 8; big by default), "
    "either with :count-header (the header counts in maxMsgLen, as in getty), "
    "line, delimiter:HEX (e.g. delimiter:00), raw"
)
#: The flag of a length codec spec that counts the header in maxMsgLen.
_COUNT_HEADER = "count-header"


def codecFromString(spec: str) -> ICodec:
    """
    Build a codec from a short text, as used by C{--codec}.

    @param spec: one of C{hello}, C{length:SIZE[:big|little]} (either
        with C{:count-header}), C{line}, C{delimiter:HEX}, C{raw}.
    @return: the codec.
    @raise ConfigError: the text names no codec; the message lists the
        accepted forms.
    """
    name, _, rest = spec.partition(":")
    countHeader = name in ("hello", "length") and (rest == _COUNT_HEADER or rest.endswith(":" + _COUNT_HEADER))
    if countHeader:
        rest = rest[: -len(_COUNT_HEADER)].rstrip(":")
    try:
        if name == "hello" and not rest:
            return HelloCodec(countHeader)
        if name == "line" and not rest:
            return LineCodec()
        if name == "raw" and not rest:
            return RawCodec()
        if name == "length" and rest:
            size, _, order = rest.partition(":")
            return LengthPrefixedCodec(int(size), order or "big", countHeader)
        if name == "delimiter" and rest:
            return DelimiterCodec(bytes.fromhex(rest))
    except (ValueError, ConfigError) as e:
        raise ConfigError(f"bad codec {spec!r}: {e}; accepted: {_CODEC_HELP}") from None
    raise ConfigError(f"unknown codec {spec!r}; accepted: {_CODEC_HELP}")
