"""
Serializers and compressors of the RPC body, by the codes the wire frame
carries (see C{docs/rpc-protocol.md}).

Serializers: 0 raw (the body is bytes, no serialization), 1 JSON (built in),
2 msgpack (the C{msgpack} extra).  Compressors: 0 none, 1 gzip, 2 zlib
(built in), 3 zstd (the C{zstd} extra), 4 lz4 (the C{lz4} extra), 5 snappy
(the C{snappy} extra).  Decompression stops at a size limit (the session's
C{maxMsgLen}), so a small compressed body cannot inflate without bound.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from typing import Any, Callable

from .errors import FrameError

RAW, JSON, MSGPACK = 0, 1, 2
NONE, GZIP, ZLIB, ZSTD, LZ4, SNAPPY = 0, 1, 2, 3, 4, 5
DEFAULT_COMPRESS_THRESHOLD = 1024
#: Decompressed bodies are refused above this size unless told otherwise.
DEFAULT_DECOMPRESS_LIMIT = 1024 * 1024


class Serializer:
    """
    Turns values into body bytes and back.

    @ivar code: the serializer code on the wire.
    @ivar name: its name.
    """

    def __init__(self, code: int, name: str, dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any]) -> None:
        """
        @param code: the wire code.
        @param name: the name (for options and messages).
        @param dumps: value -> bytes.
        @param loads: bytes -> value.
        """
        self.code = code
        self.name = name
        self.dumps = dumps
        self.loads = loads

    def __repr__(self) -> str:
        return f"<Serializer {self.code} {self.name}>"


class Compressor:
    """
    Compresses body bytes and back.

    @ivar code: the compressor code on the wire.
    @ivar name: its name.
    """

    def __init__(self, code: int, name: str, compress: Callable[[bytes], bytes],
                 decompress: Callable[[bytes, int], bytes]) -> None:
        """
        @param code: the wire code.
        @param name: the name.
        @param compress: bytes -> compressed bytes.
        @param decompress: (compressed bytes, limit) -> bytes; it must not
            produce more than C{limit} + 1 bytes (a compression bomb).
        """
        self.code = code
        self.name = name
        self.compress = compress
        self._decompress = decompress

    def decompress(self, data: bytes, limit: int = DEFAULT_DECOMPRESS_LIMIT) -> bytes:
        """
        @param data: compressed bytes.
        @param limit: the most bytes the result may have.
        @return: the decompressed bytes.
        @raise FrameError: they would exceed C{limit}, or are broken.
        """
        try:
            result = self._decompress(data, limit)
        except FrameError:
            raise
        except Exception as e:
            raise FrameError(f"cannot {self.name}-decompress the body: {type(e).__name__}: {e}") from None
        if len(result) > limit:
            raise FrameError(f"the {self.name}-compressed body decompresses to more than {limit} bytes "
                             f"(maxMsgLen)")
        return result

    def __repr__(self) -> str:
        return f"<Compressor {self.code} {self.name}>"


def _raw(value: Any) -> bytes:
    """
    @param value: bytes-like.
    @return: the bytes.
    @raise TypeError: other values cannot be sent raw.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"the raw serializer sends bytes only, not {type(value).__name__}")


try:
    # The orjson extra: text results (the most common) are encoded in C, and
    # argument lists of plain values decoded in C.
    from orjson import dumps as _orjsonDumps
    from orjson import loads as _orjsonLoads
except ImportError:  # pragma: no cover - depends on the environment
    _orjsonDumps = _orjsonLoads = None  # type: ignore[assignment]  # None: the extra is absent

#: What orjson decodes exactly as the standard decoder does (it reads an
#: integer beyond 64 bits as a float; floats are therefore not taken from it).
_EXACT = frozenset({str, int, bool, type(None)})


def _refuseConstant(name: str) -> Any:
    """
    Refuse C{NaN}, C{Infinity} and C{-Infinity}, which Python's decoder
    would otherwise read.

    @param name: the constant met.
    @raise ValueError: always.
    """
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity): send null or a string instead")


def _finiteFloat(text: str) -> float:
    """
    @param text: a JSON number with a fraction or an exponent.
    @return: its value.
    @raise ValueError: it is beyond the range of a 64-bit float (C{1e400}),
        which Python would read as infinity.
    """
    value = float(text)
    if value - value != 0.0:
        raise ValueError(f"the number {text[:40]} is beyond the range of a 64-bit float")
    return value


_jsonEncode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
# NaN, Infinity and numbers beyond a 64-bit float are refused, as by RFC
# 8259, orjson and Go.  strict=False: raw control characters inside strings
# are accepted, as by the fast path of _jsonLoads (checking for them would
# double its cost); what txgetty writes never holds any.
_jsonDecoder = json.JSONDecoder(strict=False, parse_float=_finiteFloat, parse_constant=_refuseConstant)
_jsonDecode = _jsonDecoder.decode
_jsonScan = _jsonDecoder.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__


#: The bytes a JSON string must escape: a UTF-8 text without them is its own
#: JSON string body.
_JSON_ESCAPED = bytes(range(32)) + b'"\\'


def _jsonDumps(value: Any) -> bytes:
    """
    @param value: a JSON value.
    @return: its UTF-8 JSON text.
    @raise ValueError: it holds NaN or an infinite float, which JSON has no
        form for, or a lone surrogate, which UTF-8 has none for.
    @raise TypeError: it holds a value JSON cannot carry (C{bytes}, a set).
    """
    if type(value) is str:
        # The most common result; the encoder's string escaping costs about
        # 2 ns a character, a check for what needs escaping far less, and
        # orjson (if installed) less again.  The text is the same JSON string
        # either way (orjson escapes what the standard encoder escapes with
        # ensure_ascii off); orjson's errors (a lone surrogate) are left to
        # the standard path to word.
        if _orjsonDumps is not None:
            try:
                return _orjsonDumps(value)
            except TypeError:
                pass
        data = value.encode("utf-8")
        if len(data.translate(None, _JSON_ESCAPED)) == len(data):
            return b'"' + data + b'"'
    try:
        return _jsonEncode(value).encode("utf-8")
    except ValueError as e:
        if str(e).startswith("Out of range float"):
            raise ValueError("NaN, Infinity and -Infinity are not JSON (RFC 8259 has no such numbers): "
                             "send None or a string instead") from None
        raise


def _plainStrings(inner: bytes) -> list[str] | None:
    """
    @param inner: the inside of C{["..."]} or C{["...","..."]}, without
        backslashes.
    @return: the strings, or C{None} if it is any other shape (then the
        decoder reads it, and words any error).
    """
    try:
        if inner.find(34) < 0:  # no quote: one string (find(int) is a memchr)
            return [inner.decode("utf-8")]
        parts = inner.split(b'","')
        for part in parts:
            if part.find(34) >= 0:
                return None
        return [part.decode("utf-8") for part in parts]
    except UnicodeDecodeError:
        return None


def _jsonLoads(data: bytes) -> Any:
    """
    Read JSON text as RFC 8259 defines it (except that raw control
    characters inside strings are accepted), with or without orjson alike.

    @param data: UTF-8 JSON text.
    @return: the value.
    @raise ValueError: it is not JSON: not UTF-8, not the grammar, NaN or
        Infinity, or a number beyond a 64-bit float.
    """
    if _orjsonLoads is not None and data[:1] == b"[":
        # An argument list of strings, integers, booleans and nulls, read by
        # orjson; anything else (or anything orjson refuses: control
        # characters, NaN, lone surrogates) is read again below.
        try:
            value = _orjsonLoads(data)
        except ValueError:
            pass
        else:
            for item in value:
                if type(item) not in _EXACT:
                    break
            else:
                return value
    if len(data) > 3 and data.startswith(b'["') and data.endswith(b'"]') and data.find(92) < 0:
        # The most common arguments: a list of strings with nothing escaped
        # (no backslash, so every quote ends a string), compact.  The
        # decoder reads strings a character at a time; this takes slices.
        strings = _plainStrings(data[2:-2])
        if strings is not None:
            return strings
    text = data.decode("utf-8")
    try:
        # The common case, a value with no surrounding whitespace, without
        # the whitespace checks of decode().
        value, end = _jsonScan(text, 0)
        if end == len(text):
            return value
    except StopIteration:
        pass
    return _jsonDecode(text)


SERIALIZERS: dict[int, Serializer] = {
    RAW: Serializer(RAW, "raw", _raw, bytes),
    JSON: Serializer(JSON, "json", _jsonDumps, _jsonLoads),
}
def _inflate(wbits: int) -> Callable[[bytes, int], bytes]:
    """
    @param wbits: zlib's window bits (15 zlib, 31 gzip).
    @return: a decompressor that stops after C{limit} + 1 bytes.
    """

    def inflate(data: bytes, limit: int) -> bytes:
        decompressor = zlib.decompressobj(wbits)
        result = decompressor.decompress(data, limit + 1)
        if len(result) <= limit and not decompressor.eof:
            raise FrameError("the compressed body is truncated")
        if decompressor.unused_data:
            raise FrameError("the compressed body has trailing data")
        return result

    return inflate


COMPRESSORS: dict[int, Compressor] = {
    NONE: Compressor(NONE, "none", bytes, lambda b, limit: bytes(b)),
    GZIP: Compressor(GZIP, "gzip", lambda b: gzip.compress(b, 6), _inflate(31)),
    ZLIB: Compressor(ZLIB, "zlib", lambda b: zlib.compress(b, 6), _inflate(15)),
}

try:
    import msgpack
except ImportError:  # the msgpack extra is not installed
    pass
else:
    _packers = threading.local()

    def _msgpackDumps(value: Any) -> bytes:
        """
        @param value: a value msgpack can carry.
        @return: its msgpack bytes, from this thread's reused C{Packer} (a
            new one per call costs as much as packing a short string).
        """
        try:
            packer = _packers.packer
        except AttributeError:
            packer = _packers.packer = msgpack.Packer()
        return packer.pack(value)

    SERIALIZERS[MSGPACK] = Serializer(
        MSGPACK, "msgpack", _msgpackDumps, lambda b: msgpack.unpackb(b, raw=False, strict_map_key=False)
    )

try:
    import zstandard
except ImportError:  # the zstd extra is not installed
    pass
else:
    COMPRESSORS[ZSTD] = Compressor(
        ZSTD, "zstd", zstandard.ZstdCompressor().compress,
        lambda b, limit: zstandard.ZstdDecompressor().stream_reader(b).read(limit + 1),
    )

try:
    import lz4.frame
except ImportError:  # the lz4 extra is not installed
    pass
else:
    COMPRESSORS[LZ4] = Compressor(
        LZ4, "lz4", lz4.frame.compress,
        lambda b, limit: lz4.frame.LZ4FrameDecompressor().decompress(b, max_length=limit + 1),
    )

try:
    import snappy
except ImportError:  # the snappy extra is not installed
    pass
else:
    COMPRESSORS[SNAPPY] = Compressor(SNAPPY, "snappy", snappy.compress, lambda b, limit: _unsnappy(b, limit))


def _unsnappy(data: bytes, limit: int) -> bytes:
    """
    @param data: a raw snappy block (it starts with the uncompressed length
        as a varint).
    @param limit: the most bytes the result may have.
    @return: the decompressed bytes.
    @raise FrameError: the declared length exceeds C{limit} (checked before
        anything is decompressed).
    """
    length = shift = 0
    for i, byte in enumerate(data[:10]):
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if length > limit:
        raise FrameError(f"the snappy-compressed body declares {length} bytes, more than {limit} (maxMsgLen)")
    return snappy.decompress(data)

_EXTRAS = {MSGPACK: "msgpack", ZSTD: "zstd", LZ4: "lz4", SNAPPY: "snappy"}


def _lookup(kind: str, key: int | str, table: dict[int, Any], names: dict[int, str]) -> Any:
    """
    @param kind: C{"serializer"} or C{"compressor"}.
    @param key: a code or a name.
    @param table: the available ones by code.
    @param names: every known one's name by code, installed or not.
    @return: the one asked for.
    @raise FrameError: it is unknown, or its extra is not installed.
    """
    for value in table.values():
        if key in (value.code, value.name):
            return value
    for code, name in names.items():
        if key in (code, name) and code in _EXTRAS:
            raise FrameError(
                f"{kind} {name} (code {code}) needs the txgetty[{_EXTRAS[code]}] extra: "
                f"pip install 'txgetty[{_EXTRAS[code]}]'"
            )
    available = ", ".join(f"{v.name} ({c})" for c, v in sorted(table.items()))
    raise FrameError(f"unknown {kind} {key!r}; available here: {available}")


def serializer(key: int | str) -> Serializer:
    """
    @param key: a serializer code or name.
    @return: the serializer.
    @raise FrameError: it is unknown or its extra is not installed.
    """
    return _lookup("serializer", key, SERIALIZERS, {0: "raw", 1: "json", 2: "msgpack"})


def compressor(key: int | str) -> Compressor:
    """
    @param key: a compressor code or name.
    @return: the compressor.
    @raise FrameError: it is unknown or its extra is not installed.
    """
    return _lookup("compressor", key, COMPRESSORS,
                   {0: "none", 1: "gzip", 2: "zlib", 3: "zstd", 4: "lz4", 5: "snappy"})
