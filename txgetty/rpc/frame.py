"""
The RPC wire frame (after seata's protocol v1), all integers big-endian::

  0   2  magic 0xdada            9   1  message type
  2   1  version (1)             10  1  serializer code
  3   4  full length (all bytes) 11  1  compressor code
  7   2  head length (16 + map)  12  4  request id
  16  ...  head map: entries of (u16 length + UTF-8 key, u16 length + UTF-8 value)
  ...      body: full length - head length bytes (serialized, then compressed)

L{RpcCodec} is a txgetty codec for it: a frame declaring more than
C{maxMsgLen} bytes is refused from its 16-byte header, before the body.
"""

from __future__ import annotations

from struct import Struct
from types import MappingProxyType
from typing import Any, Mapping

from zope.interface import implementer

from ..errors import CodecError, PacketTooLargeError
from ..interfaces import ICodec

MAGIC = 0xDADA
VERSION = 1
HEADER = Struct(">HBIHBBBI")
HEADER_SIZE = HEADER.size
_U16 = Struct(">H")

REQUEST, RESPONSE, ONEWAY, HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE, CANCEL = 0, 1, 2, 3, 4, 5
TYPES = {
    REQUEST: "request", RESPONSE: "response", ONEWAY: "oneway",
    HEARTBEAT_REQUEST: "heartbeat request", HEARTBEAT_RESPONSE: "heartbeat response",
    CANCEL: "cancel",
}

#: Head map keys with a meaning to txgetty (see docs/rpc-protocol.md).
SERVICE, METHOD, STATUS, ERROR_TYPE, ERROR_MESSAGE, ERROR_CODE = (
    "service", "method", "status", "error-type", "error-message", "error-code"
)
TIMEOUT_MS, AUTH, TRACE_ID, ACCEPT_COMPRESSOR = "timeout-ms", "auth", "trace-id", "accept-compressor"
#: The C{status} of the server's going-away notice (a response frame with
#: request id 0, no body): it takes no new calls on this connection.
GOING_AWAY = "going-away"

_CACHE_LIMIT = 4096


class Frame:
    """
    One RPC frame.

    @ivar type: the message type (L{REQUEST}, L{RESPONSE}, ...).
    @ivar requestId: the request id (0 to 2**32 - 1).
    @ivar head: the head map (text keys and values); read-only in frames
        read from the wire.
    @ivar body: the body bytes, as on the wire (serialized and compressed).
    @ivar serializer: the serializer code of the body.
    @ivar compressor: the compressor code of the body.
    """

    __slots__ = ("type", "requestId", "head", "body", "serializer", "compressor")

    def __init__(self, type: int, requestId: int, head: Mapping[str, str] | None = None, body: bytes = b"",
                 serializer: int = 1, compressor: int = 0) -> None:
        """
        @param type: the message type.
        @param requestId: the request id.
        @param head: the head map (not copied).
        @param body: the body bytes, ready for the wire.
        @param serializer: the serializer code.
        @param compressor: the compressor code.
        """
        self.type = type
        self.requestId = requestId
        self.head: Mapping[str, str] = head if head is not None else {}
        self.body = body
        self.serializer = serializer
        self.compressor = compressor

    def __repr__(self) -> str:
        return (f"<Frame {TYPES.get(self.type, self.type)} #{self.requestId} head={self.head!r} "
                f"body={len(self.body)} B ser={self.serializer} comp={self.compressor}>")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frame) and all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def encode(self) -> bytes:
        """
        @return: the frame's bytes on the wire.
        @raise CodecError: a head entry or the frame is too long for its
            length fields.
        """
        head = encodeHead(self.head) if self.head else b""
        headLength = HEADER_SIZE + len(head)
        fullLength = headLength + len(self.body)
        if headLength > 0xFFFF or fullLength > 0xFFFFFFFF:
            raise CodecError(f"frame too large for the wire format: head {headLength} B, total {fullLength} B")
        return HEADER.pack(MAGIC, VERSION, fullLength, headLength, self.type, self.serializer,
                           self.compressor, self.requestId) + head + self.body


_encodedHeads: dict[tuple, bytes] = {}


def encodeHead(head: Mapping[str, str]) -> bytes:
    """
    @param head: a head map.
    @return: its bytes (cached for maps seen before).
    @raise CodecError: a key or value is not text or longer than 65535
        bytes in UTF-8.
    """
    key = tuple(head.items())
    try:
        cached = _encodedHeads.get(key)
    except TypeError:
        cached = None
    if cached is not None:
        return cached
    parts: list[bytes] = []
    for k, v in head.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise CodecError(f"head map entries must be text, got {k!r}: {v!r}")
        kb, vb = k.encode("utf-8"), v.encode("utf-8")
        if len(kb) > 0xFFFF or len(vb) > 0xFFFF:
            raise CodecError(f"head map entry {k[:40]!r} is longer than 65535 bytes")
        parts += (_U16.pack(len(kb)), kb, _U16.pack(len(vb)), vb)
    data = b"".join(parts)
    if len(_encodedHeads) >= _CACHE_LIMIT:
        _encodedHeads.clear()
    _encodedHeads[key] = data
    return data


_decodedHeads: dict[bytes, Mapping[str, str]] = {}


def _text(data: bytes, off: int) -> tuple[str, int]:
    """
    @param data: head map bytes.
    @param off: where a u16-length-prefixed text starts.
    @return: the text and the offset after it.
    @raise CodecError: it runs past the end or is not UTF-8.
    """
    if off + 2 > len(data):
        raise CodecError("a head map entry is cut short by the head length")
    (length,) = _U16.unpack_from(data, off)
    end = off + 2 + length
    if end > len(data):
        raise CodecError("a head map entry runs past the head length")
    try:
        return data[off + 2:end].decode("utf-8"), end
    except UnicodeDecodeError:
        raise CodecError("a head map entry is not UTF-8") from None


def decodeHead(data: bytes) -> Mapping[str, str]:
    """
    @param data: the head map bytes of a frame.
    @return: the entries, read-only (maps seen before are parsed once and
        shared).
    @raise CodecError: the entries do not fill the bytes exactly, or are not
        UTF-8.
    """
    cached = _decodedHeads.get(data)
    if cached is not None:
        return cached
    entries: dict[str, str] = {}
    off = 0
    while off < len(data):
        key, off = _text(data, off)
        entries[key], off = _text(data, off)
    if len(_decodedHeads) >= _CACHE_LIMIT:
        _decodedHeads.clear()
    head = _decodedHeads[data] = MappingProxyType(entries)
    return head


def _checkHeader(magic: int, version: int, fullLength: int, headLength: int, type: int, limit: int) -> None:
    """
    Refuse a bad header as soon as its 16 bytes are there.

    @raise CodecError: wrong magic or version, inconsistent lengths, unknown
        type.
    @raise PacketTooLargeError: the frame is longer than C{limit}.
    """
    if magic != MAGIC:
        raise CodecError(f"bad magic 0x{magic:04x}: not a txgetty RPC frame (expected 0xdada)")
    if version != VERSION:
        raise CodecError(f"unsupported RPC protocol version {version} (this side speaks version {VERSION})")
    if fullLength > limit:
        raise PacketTooLargeError(fullLength, limit, what=f"an RPC frame of {fullLength} bytes")
    if not HEADER_SIZE <= headLength <= fullLength:
        raise CodecError(
            f"bad frame lengths: head length {headLength} must be between {HEADER_SIZE} and the full length "
            f"{fullLength}"
        )
    if type not in TYPES:
        raise CodecError(f"unknown message type {type} (known: {', '.join(f'{k} {v}' for k, v in TYPES.items())})")


@implementer(ICodec)
class RpcCodec:
    """
    The txgetty codec of RPC frames: packets are L{Frame}s.
    """

    def __repr__(self) -> str:
        return "RpcCodec()"

    def read(self, session: Any, data: bytearray) -> tuple[Any, int]:
        """
        Read one frame (getty's contract).

        @param session: the session (for C{maxMsgLen}).
        @param data: unconsumed bytes.
        @return: C{(None, 0)}, C{(None, total)} or C{(frame, total)}.
        """
        if len(data) < HEADER_SIZE:
            return None, 0
        magic, version, full, headLength, type, ser, comp, rid = HEADER.unpack_from(data, 0)
        _checkHeader(magic, version, full, headLength, type, session.maxMsgLen)
        if len(data) < full:
            return None, full
        head = decodeHead(bytes(data[HEADER_SIZE:headLength]))
        return Frame(type, rid, head, bytes(data[headLength:full]), ser, comp), full

    def readPackets(self, session: Any, buf: bytearray, out: list) -> int:
        """
        Cut every complete frame from the front of C{buf} into C{out}.

        @param session: the session (for C{maxMsgLen}).
        @param buf: the session's buffer; consumed bytes are removed.
        @param out: where frames go.
        @return: bytes needed before the next frame can complete.
        """
        limit = session.maxMsgLen
        unpack = HEADER.unpack_from
        append = out.append
        n = len(buf)
        off = 0
        view = memoryview(buf)
        try:
            while n - off >= HEADER_SIZE:
                magic, version, full, headLength, type, ser, comp, rid = unpack(view, off)
                if magic != MAGIC or version != VERSION or full > limit or headLength < HEADER_SIZE \
                        or headLength > full or type not in TYPES:
                    _checkHeader(magic, version, full, headLength, type, limit)
                end = off + full
                if end > n:
                    return end - off
                headEnd = off + headLength
                head = decodeHead(view[off + HEADER_SIZE:headEnd].tobytes()) if headLength > HEADER_SIZE else {}
                append(Frame(type, rid, head, view[headEnd:end].tobytes(), ser, comp))
                off = end
            return HEADER_SIZE if off < n else 0
        finally:
            view.release()
            if off:
                del buf[:off]

    def write(self, session: Any, frame: Frame | bytes) -> bytes:
        """
        @param session: the session.
        @param frame: a L{Frame}, or the bytes of one (see L{responseBytes}).
        @return: its bytes.
        @raise TypeError: C{frame} is neither.
        """
        if type(frame) is bytes:
            return frame
        if not isinstance(frame, Frame):
            raise TypeError(f"RpcCodec writes Frame objects, not {type(frame).__name__}")
        return frame.encode()


_pack = HEADER.pack


def responseBytes(requestId: int, body: bytes, serializer: int, compressor: int) -> bytes:
    """
    @param requestId: the request answered.
    @param body: the response body.
    @param serializer: its serializer code.
    @param compressor: its compressor code.
    @return: the bytes of a successful response (an empty head map).
    """
    return _pack(MAGIC, VERSION, HEADER_SIZE + len(body), HEADER_SIZE, RESPONSE, serializer, compressor,
                 requestId) + body
