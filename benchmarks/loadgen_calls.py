"""The request/response protocols of loadgen.py: Twisted AMP boxes and txgetty's RPC frame.

Unlike an echo, every answer names its request (AMP's ``_answer``, the RPC frame's request
id), so each connection keeps the send time of every call in flight by that number; a
call's latency runs from the write of its request to the read that completes its answer.
The k answers of one read are answered at once by k new calls in one write (closed loop,
as loadgen.py's echo protocols).  Every answer is checked: its number is a call in flight,
and it carries the payload back unchanged; anything else (an AMP error box, an RPC error
response, a wrong frame) ends the run with a message saying what came back (exit status 2).

Both protocols carry the same value: ``Run.text``, --size printable ASCII characters with
no ``"`` or ``\\`` (so that JSON sends them without escapes).

  amp  the command ``Echo`` of peers/tw_amp.py with one argument ``data`` (amp.String: the
       text's bytes), answered with ``data``: each request box is ``_ask`` (the call's
       number), ``_command`` ``Echo``, ``data``; each answer box ``_answer``, ``data``.
       (Ported from the team's harness, shared/bench/client.py: AmpConn.)
  rpc  txgetty's RPC frame (docs/rpc-protocol.md): a request (type 0) with the head map
       ``service``, ``method`` (--rpc-method, default Echo.echo) and the positional
       arguments ``[text]`` as the body, serialized with --serializer (json: code 1,
       msgpack: code 2; raw: code 0, the text's bytes as the body, no list), compressor 0,
       no ``timeout-ms``; request ids 1, 2, 3, ... per connection.  The answer must be a
       response (type 1) with the request's id and serializer, compressor 0, no head map
       (success) and the text serialized alone as its body.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from typing import Any

now_ns = time.perf_counter_ns
_H = struct.Struct("!H")
_I = struct.Struct("!I")
#: the RPC frame's header (docs/rpc-protocol.md): magic, version, full length, head length,
#: type, serializer, compressor, request id; PREFIX is all of it but the request id
RPC_HEADER = struct.Struct(">HBIHBBBI")
RPC_PREFIX = struct.Struct(">HBIHBBB")
RPC_MAGIC, RPC_VERSION, RPC_REQUEST, RPC_RESPONSE = 0xDADA, 1, 0, 1
RPC_SERIALIZERS = {"raw": 0, "json": 1, "msgpack": 2}
_RPC_TYPES = {0: "request", 1: "response", 2: "oneway", 3: "heartbeat request", 4: "heartbeat response",
              5: "cancel"}


def payload_text(payload: bytes) -> str:
    """Return the value both protocols carry: one printable ASCII character per payload byte,
    never ``"`` or ``\\``."""
    alphabet = [chr(c) for c in range(32, 127) if c not in (34, 92)]
    return "".join(alphabet[b % len(alphabet)] for b in payload)


class Conn(asyncio.Protocol):
    """What every connection of loadgen.py keeps: its run, a receive buffer, readiness, the
    one-answer future of the idle and connrate modes, and whether it is closing on purpose
    (an unexpected loss counts as an error)."""

    def __init__(self, run: Any) -> None:
        """Start unconnected; connection_made() fulfils self.ready."""
        self.run = run
        self.buf = bytearray()
        self.ready = asyncio.get_running_loop().create_future()
        self.one: asyncio.Future | None = None  # set by the first answer (idle/connrate)
        self.transport: Any = None
        self.closing = False

    def connection_made(self, transport: Any) -> None:
        """Keep the transport and signal readiness."""
        self.transport = transport
        self.ready.set_result(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Count an unexpected loss as an error."""
        if not self.run.stopping and not self.closing:
            self.run.errors += 1
        if self.one is not None and not self.one.done():
            self.one.set_exception(ConnectionError("lost"))


class CallConn(Conn):
    """One connection of a request/response protocol: calls in flight by number (their send
    times), readiness and the one-answer future of the idle and connrate modes."""

    def __init__(self, run: Any) -> None:
        """Start with no call in flight; connection_made() fulfils self.ready."""
        super().__init__(run)
        self.size = len(run.text)
        self.pending: dict[Any, int] = {}  # call number -> send time (ns)
        self.seq = 0

    def answered(self, sent: list[int]) -> None:
        """Record the latency of the calls answered in one read (their send times) and make as
        many new calls in one write."""
        run = self.run
        now = now_ns()
        if run.measuring:
            run.count += len(sent)
            run.lat.extend([now - t for t in sent])
        if self.one is not None:
            if not self.one.done():
                self.one.set_result(now)
            return
        if not run.stopping:
            self.send(len(sent), now)

    def send(self, n: int, t: int | None = None) -> None:
        """Write n requests in one write, stamped with t (now by default)."""
        raise NotImplementedError


def amp_tail(data: bytes) -> bytes:
    """Return what follows ``_ask`` in every request box: ``_command`` ``Echo``, ``data``, the end."""
    return b"\x00\x08_command\x00\x04Echo\x00\x04data" + _H.pack(len(data)) + data + b"\x00\x00"


class AmpConn(CallConn):
    """AMP: request boxes ``_ask=<n>, _command=Echo, data=<text>``; answer boxes ``_answer=<n>,
    data=<text>`` (in any order: matched by number)."""

    def __init__(self, run: Any) -> None:
        """Prepare the constant tail of every request box."""
        super().__init__(run)
        self.data = run.text.encode()
        if len(self.data) > 0xFFFF:
            run.fail("AMP values are limited to 65535 bytes")
        self.tail = amp_tail(self.data)

    def send(self, n: int, t: int | None = None) -> None:
        """Write n request boxes in one write."""
        t = t or now_ns()
        out = []
        pend = self.pending
        tail = self.tail
        for _ in range(n):
            self.seq += 1
            s = str(self.seq).encode()
            pend[s] = t
            out.append(b"\x00\x04_ask" + _H.pack(len(s)) + s + tail)
        self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        """Parse the complete answer boxes, check them, account their calls."""
        buf = self.buf
        buf += data
        n = len(buf)
        off = 0
        sent = []
        pend = self.pending
        unpack = _H.unpack_from
        while True:
            pos = off
            ans = None
            ok = False
            complete = False
            while n - pos >= 2:
                (kl,) = unpack(buf, pos)
                if kl == 0:
                    pos += 2
                    complete = True
                    break
                if n - pos < 4 + kl:
                    break
                k = bytes(buf[pos + 2:pos + 2 + kl])
                pos += 2 + kl
                (vl,) = unpack(buf, pos)
                if n - pos < 2 + vl:
                    break
                if k == b"_answer":
                    ans = bytes(buf[pos + 2:pos + 2 + vl])
                elif k == b"data":
                    if vl != self.size or not buf.startswith(self.data, pos + 2):
                        self.run.fail(f"AMP answer's data differs from the request's ({vl} bytes, "
                                      f"expected {self.size})")
                    ok = True
                elif k == b"_error":
                    self.run.fail(f"AMP error box: {bytes(buf[off:off + 300])!r}")
                pos += 2 + vl
            if not complete:
                break
            if ans is None:
                self.run.fail(f"AMP box without _answer: {bytes(buf[off:min(pos, off + 300)])!r}")
            if not ok:
                self.run.fail(f"AMP answer {ans!r} has no data")
            t = pend.pop(ans, None)
            if t is None:
                self.run.fail(f"AMP answer {ans!r} to no call in flight")
            sent.append(t)
            off = pos
        if off:
            del buf[:off]
        if sent:
            self.answered(sent)


def _rpc_head(entries: dict[str, str]) -> bytes:
    """Return the bytes of an RPC head map (u16 length + UTF-8 key, u16 length + UTF-8 value)."""
    out = b""
    for k, v in entries.items():
        kb, vb = k.encode(), v.encode()
        out += _H.pack(len(kb)) + kb + _H.pack(len(vb)) + vb
    return out


def _rpc_head_decode(data: bytes) -> dict[str, str]:
    """Return the entries of an RPC head map (what can be read of it)."""
    out: dict[str, str] = {}
    off = 0
    try:
        while off + 2 <= len(data):
            (kl,) = _H.unpack_from(data, off)
            k = data[off + 2:off + 2 + kl].decode(errors="replace")
            off += 2 + kl
            (vl,) = _H.unpack_from(data, off)
            out[k] = data[off + 2:off + 2 + vl].decode(errors="replace")
            off += 2 + vl
    except struct.error:
        out["(cut)"] = data[off:off + 40].hex()
    return out


class RpcTemplate:
    """The bytes every RpcConn of a run sends and expects (built once per run)."""

    def __init__(self, o: Any, text: str) -> None:
        """Build the request (without its id) and the expected response (without its id)."""
        service, _, method = o.rpc_method.partition(".")
        if not service or not method:
            raise SystemExit(f"loadgen.py: --rpc-method takes Service.method, got {o.rpc_method!r}")
        self.method = o.rpc_method
        self.ser = RPC_SERIALIZERS[o.serializer]
        if o.serializer == "json":
            dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
            body, result = dumps([text]).encode(), dumps(text).encode()
        elif o.serializer == "msgpack":
            try:
                import msgpack
            except ImportError:
                raise SystemExit("loadgen.py: --serializer msgpack needs the msgpack package") from None
            body, result = msgpack.packb([text]), msgpack.packb(text)
        else:  # raw: the body is the one bytes argument, and the result's bytes
            body = result = text.encode()
        head = _rpc_head({"service": service, "method": method})
        hl = RPC_HEADER.size + len(head)
        self.req_prefix = RPC_PREFIX.pack(RPC_MAGIC, RPC_VERSION, hl + len(body), hl, RPC_REQUEST, self.ser, 0)
        self.req_tail = head + body
        self.req_len = hl + len(body)
        self.req_body_len = len(body)
        self.result = result
        self.resp_len = RPC_HEADER.size + len(result)
        self.resp_prefix = RPC_PREFIX.pack(RPC_MAGIC, RPC_VERSION, self.resp_len, RPC_HEADER.size, RPC_RESPONSE,
                                           self.ser, 0)


class RpcConn(CallConn):
    """txgetty RPC: request frames with ids 1, 2, 3, ...; each response is checked against the
    expected one with two comparisons in the buffer (its 12 bytes before the id, its body) and
    its id must be a call in flight.  Anything else is read in full to say what it was."""

    def __init__(self, run: Any) -> None:
        """Take the run's template (built by the first connection)."""
        super().__init__(run)
        tpl = getattr(run, "rpc_template", None)
        if tpl is None:
            tpl = run.rpc_template = RpcTemplate(run.o, run.text)
        self.tpl = tpl

    def send(self, n: int, t: int | None = None) -> None:
        """Write n request frames in one write."""
        t = t or now_ns()
        tpl = self.tpl
        pend = self.pending
        parts = []
        pack = _I.pack
        prefix, tail = tpl.req_prefix, tpl.req_tail
        seq = self.seq
        for _ in range(n):
            seq = (seq + 1) & 0xFFFFFFFF
            pend[seq] = t
            parts += (prefix, pack(seq), tail)
        self.seq = seq
        self.transport.write(b"".join(parts))

    def data_received(self, data: bytes) -> None:
        """Check and account every complete response in the buffer."""
        buf = self.buf
        buf += data
        tpl = self.tpl
        rp, result, rl = tpl.resp_prefix, tpl.result, tpl.resp_len
        starts = buf.startswith
        unpack = _I.unpack_from
        pend = self.pending
        n = len(buf)
        off = 0
        sent = []
        while n - off >= 16:
            if not starts(rp, off):
                self.bad_frame(off)  # returns only if that frame is not complete yet
                break
            if n - off < rl:
                break
            if not starts(result, off + 16):
                self.run.fail(f"the result of {tpl.method} differs from its argument "
                              f"(body {bytes(buf[off + 16:off + 56])!r}...)")
            (rid,) = unpack(buf, off + 12)
            t = pend.pop(rid, None)
            if t is None:
                self.run.fail(f"response with request id {rid}, which is not in flight")
            sent.append(t)
            off += rl
        if off:
            del buf[:off]
        if sent:
            self.answered(sent)

    def bad_frame(self, off: int) -> None:
        """Fail with what the frame at off is (an error response, a wrong frame); return only if
        it is not complete yet."""
        buf, tpl, fail = self.buf, self.tpl, self.run.fail
        magic, version, full, hl, kind, ser, comp, rid = RPC_HEADER.unpack_from(buf, off)
        if magic != RPC_MAGIC:
            fail(f"not an RPC frame: magic 0x{magic:04x} (expected 0xdada): {bytes(buf[off:off + 40])!r}")
        if version != RPC_VERSION:
            fail(f"RPC protocol version {version}, expected {RPC_VERSION}")
        if not 16 <= hl <= full:
            fail(f"bad RPC frame lengths: full {full}, head {hl}")
        if len(buf) - off < full:
            return
        head = _rpc_head_decode(bytes(buf[off + 16:off + hl]))
        what = f"{_RPC_TYPES.get(kind, kind)} #{rid} to {tpl.method}"
        if kind == RPC_RESPONSE and head.get("status") == "error":
            code = f" (code {head['error-code']})" if "error-code" in head else ""
            fail(f"error response #{rid} to {tpl.method}: {head.get('error-type', 'Error')}: "
                 f"{head.get('error-message', '')}{code}")
        if kind != RPC_RESPONSE:
            fail(f"unexpected RPC frame: {what} (expected responses only)")
        if ser != tpl.ser or comp:
            fail(f"{what}: serializer {ser}, compressor {comp} (expected serializer {tpl.ser}, compressor 0)")
        if head:
            fail(f"{what}: unexpected head map {head!r}")
        fail(f"{what}: body of {full - hl} bytes, expected {len(tpl.result)}: "
             f"{bytes(buf[off + hl:off + min(full, hl + 40)])!r}...")
