"""
Unit tests of L{txgetty.discovery.etcd} without etcd: registry URLs, what
the client sends to the JSON gateway (a fake HTTP agent records it), how it
reads etcd's answers and errors, its timeouts, and the watch stream.
"""

from __future__ import annotations

from typing import Any
import base64
import os

from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from twisted.web._newclient import ResponseFailed
from zope.interface.verify import verifyObject

from txgetty.discovery import (
    EtcdClient,
    EtcdError,
    EtcdLeaseNotFoundError,
    EtcdProtocolError,
    EtcdUnavailableError,
    EtcdWatchCanceledError,
    IEtcdClient,
    IEtcdWatch,
    WatchEvent,
    parseEtcdURL,
)
from txgetty.discovery.etcd import prefixRangeEnd
from txgetty.discovery.testing import MemoryEtcd
from txgetty.errors import ConfigError

from ...support import etcd as etcdsupport
from ...support.etcd import FakeAgent
from ...support.logs import captureEvents


def b64(text: str | bytes) -> str:
    """
    @param text: a key or value.
    @return: its base64, as the gateway carries it.
    """
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def header(revision: int = 7) -> dict[str, Any]:
    """
    @param revision: the store revision.
    @return: a response header as etcd sends it (integers as strings).
    """
    return {"cluster_id": "1", "member_id": "2", "revision": str(revision), "raft_term": "2"}


class RegistryURLTests(SynchronousTestCase):
    """
    L{parseEtcdURL} reads C{etcd://HOST:PORT[/PREFIX]} and says what is
    wrong with anything else.
    """

    def test_forms(self) -> None:
        """
        The port defaults to 2379, the prefix to C{/txgetty}; a trailing
        slash is dropped; IPv6 hosts keep their brackets.
        """
        cases = {
            "etcd://127.0.0.1:2379": ("http://127.0.0.1:2379", "/txgetty"),
            "etcd://10.0.0.1": ("http://10.0.0.1:2379", "/txgetty"),
            "etcd://etcd.example:4001/": ("http://etcd.example:4001", "/txgetty"),
            "etcd://h:1/apps/prod/": ("http://h:1", "/apps/prod"),
            "etcd://[::1]:2379/x": ("http://[::1]:2379", "/x"),
        }
        for url, expected in cases.items():
            self.assertEqual(parseEtcdURL(url), expected, url)

    def test_badURLs(self) -> None:
        """
        Each wrong URL is a L{ConfigError} that quotes it, says what is
        wrong and names the expected form and C{--registry}.
        """
        cases = {
            "http://127.0.0.1:2379": "must start with etcd://",
            "etcd:127.0.0.1": "must start with etcd://",
            "": "is empty",
            "etcd://": "names no host",
            "etcd://h:99999": "not a number 1-65535",
            "etcd://h:0": "not a number 1-65535",
            "etcd://h:port": "not a number 1-65535",
            "etcd://user:pw@h:2379": "must not carry a user",
            "etcd://h:2379?x=1": "query or fragment",
            "etcd://h:2379//x": "empty segment",
        }
        for url, why in cases.items():
            error = self.assertRaises(ConfigError, parseEtcdURL, url)
            self.assertIn(why, str(error), url)
            self.assertIn("etcd://HOST:PORT[/PREFIX]", str(error))
            self.assertIn("--registry", str(error))
            self.assertIn(repr(url), str(error))

    def test_prefixRangeEnd(self) -> None:
        """
        A prefix's range ends at the prefix with its last byte incremented,
        0xff bytes carried; all-0xff means "to the end" (C{b"\\0"}).
        """
        self.assertEqual(prefixRangeEnd(b"/a/"), b"/a0")
        self.assertEqual(prefixRangeEnd(b"a\xff"), b"b")
        self.assertEqual(prefixRangeEnd(b"\xff\xff"), b"\0")


class ClientTestCase(SynchronousTestCase):
    """
    A client on a fake agent and a memory clock.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.agent = FakeAgent()
        self.client = EtcdClient(self.clock, "http://etcd.test:2379", timeout=3, agent=self.agent)

    def sent(self) -> tuple[bytes, bytes, Any]:
        """
        @return: method, URI and JSON body of the last request.
        """
        method, uri, headers, body, _ = self.agent.requests[-1]
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"application/json"])
        return method, uri, self.agent.lastJSON()


class RequestTests(ClientTestCase):
    """
    What each operation sends and what it makes of the answer.
    """

    def test_interface(self) -> None:
        """
        L{EtcdClient} and L{MemoryEtcd} provide L{IEtcdClient}.
        """
        self.assertTrue(verifyObject(IEtcdClient, self.client))
        self.assertTrue(verifyObject(IEtcdClient, MemoryEtcd(self.clock)))

    def test_badSettings(self) -> None:
        """
        A URL that is not C{http(s)://HOST:PORT} and a timeout that is not
        a positive number are L{ConfigError}s naming the value.
        """
        for url in ("etcd://h:2379", "h:2379", "http://", "http://h:2379/v3"):
            self.assertIn(repr(url), str(self.assertRaises(ConfigError, EtcdClient, self.clock, url)))
        for timeout in (0, -1, "5", True):
            error = self.assertRaises(ConfigError, EtcdClient, self.clock, "http://h:1", timeout=timeout)
            self.assertIn("timeout", str(error))

    def test_put(self) -> None:
        """
        C{put} posts base64 key and value and the lease as a string to
        C{/v3/kv/put}, and fires with the revision.
        """
        d = self.client.put("/txgetty/k", b"\x00\xffv", lease=123)
        self.assertEqual(
            self.sent(), (b"POST", b"http://etcd.test:2379/v3/kv/put",
                          {"key": b64("/txgetty/k"), "value": b64(b"\x00\xffv"), "lease": "123"})
        )
        self.agent.answer(body={"header": header(9)})
        self.assertEqual(self.successResultOf(d), 9)

    def test_getAndMissing(self) -> None:
        """
        C{get} fires with the value, or C{None} when etcd's answer has no
        C{kvs} (etcd omits empty fields).
        """
        d = self.client.get("k")
        self.assertEqual(self.sent()[2], {"key": b64("k")})
        self.agent.answer(body={"header": header(), "kvs": [{"key": b64("k"), "value": b64("v")}], "count": "1"})
        self.assertEqual(self.successResultOf(d), b"v")
        d = self.client.get("k")
        self.agent.answer(body={"header": header()})
        self.assertIsNone(self.successResultOf(d))

    def test_getPrefix(self) -> None:
        """
        C{getPrefix} asks for the range C{[prefix, prefix+1)} and fires
        with the revision and the keys as text; an empty value (omitted by
        etcd) is C{b""}.
        """
        d = self.client.getPrefix("/p/")
        self.assertEqual(self.sent()[2], {"key": b64("/p/"), "range_end": b64("/p0")})
        self.agent.answer(body={"header": header(12), "kvs": [
            {"key": b64("/p/a"), "value": b64("1")}, {"key": b64("/p/é")}]})
        self.assertEqual(self.successResultOf(d), (12, {"/p/a": b"1", "/p/é": b""}))
        self.assertRaises(ValueError, self.client.getPrefix, "")

    def test_deletes(self) -> None:
        """
        C{delete} and C{deletePrefix} fire with the count etcd deleted (0
        when etcd omits it).
        """
        d = self.client.delete("k")
        self.assertEqual(self.sent()[1], b"http://etcd.test:2379/v3/kv/deleterange")
        self.agent.answer(body={"header": header(), "deleted": "1"})
        self.assertEqual(self.successResultOf(d), 1)
        d = self.client.deletePrefix("/p/")
        self.assertEqual(self.sent()[2], {"key": b64("/p/"), "range_end": b64("/p0")})
        self.agent.answer(body={"header": header()})
        self.assertEqual(self.successResultOf(d), 0)

    def test_leases(self) -> None:
        """
        Grant sends C{TTL} and fires with the ID (a string in JSON);
        keep-alive is one message of the streaming endpoint, its C{TTL}
        missing when the lease is gone (0); time-to-live is -1 then.
        """
        d = self.client.grantLease(5)
        self.assertEqual(self.sent()[1:], (b"http://etcd.test:2379/v3/lease/grant", {"TTL": 5}))
        self.agent.answer(body={"header": header(), "ID": "7587867", "TTL": "5"})
        self.assertEqual(self.successResultOf(d), 7587867)
        d = self.client.keepAliveOnce(7587867)
        self.assertEqual(self.sent()[1:], (b"http://etcd.test:2379/v3/lease/keepalive", {"ID": "7587867"}))
        self.agent.answer(body={"result": {"header": header(), "ID": "7587867", "TTL": "5"}})
        self.assertEqual(self.successResultOf(d), 5)
        d = self.client.keepAliveOnce(1)
        self.agent.answer(body={"result": {"header": header(), "ID": "1"}})
        self.assertEqual(self.successResultOf(d), 0)
        d = self.client.leaseTimeToLive(1)
        self.agent.answer(body={"header": header(), "ID": "1", "TTL": "-1"})
        self.assertEqual(self.successResultOf(d), -1)
        for ttl in (0, 1.5, "5", True):
            self.assertRaises(ConfigError, self.client.grantLease, ttl)

    def test_revoke(self) -> None:
        """
        C{revokeLease} fires with C{True}, or C{False} when etcd says the
        lease is not found.
        """
        d = self.client.revokeLease(42)
        self.assertEqual(self.sent()[1:], (b"http://etcd.test:2379/v3/lease/revoke", {"ID": "42"}))
        self.agent.answer(body={"header": header()})
        self.assertIs(self.successResultOf(d), True)
        d = self.client.revokeLease(42)
        self.agent.answer(404, {"error": "etcdserver: requested lease not found",
                                "message": "etcdserver: requested lease not found", "code": 5})
        self.assertIs(self.successResultOf(d), False)

    def test_version(self) -> None:
        """
        C{version} GETs C{/version} without a body.
        """
        d = self.client.version()
        method, uri, _, body, _ = self.agent.requests[-1]
        self.assertEqual((method, uri, body), (b"GET", b"http://etcd.test:2379/version", None))
        self.agent.answer(body={"etcdserver": "3.4.23", "etcdcluster": "3.4.0"})
        self.assertEqual(self.successResultOf(d)["etcdserver"], "3.4.23")


class ErrorTests(ClientTestCase):
    """
    Failures are named errors that say what happened and what to change.
    """

    def test_leaseNotFound(self) -> None:
        """
        A put under a lease etcd does not have fails with
        L{EtcdLeaseNotFoundError} naming the lease.
        """
        d = self.client.put("k", "v", lease=99)
        self.agent.answer(404, {"error": "etcdserver: requested lease not found",
                                "message": "etcdserver: requested lease not found", "code": 5})
        error = self.failureResultOf(d, EtcdLeaseNotFoundError).value
        self.assertEqual(error.leaseID, 99)
        self.assertIn("lease 99", str(error))
        self.assertIn("/v3/kv/put", str(error))

    def test_etcdErrors(self) -> None:
        """
        etcd's error answers keep its message and gRPC code; code 14 (no
        leader, shutting down) is L{EtcdUnavailableError}.
        """
        d = self.client.put("k", "v")
        self.agent.answer(400, {"error": "etcdserver: key is not provided", "message": "etcdserver: key is not provided", "code": 3})
        error = self.failureResultOf(d, EtcdError).value
        self.assertNotIsInstance(error, EtcdUnavailableError)
        self.assertEqual((error.code, error.reason), (3, "etcdserver: key is not provided"))
        self.assertIn("etcdserver: key is not provided (gRPC code 3)", str(error))
        d = self.client.get("k")
        self.agent.answer(503, {"error": "etcdserver: no leader", "message": "etcdserver: no leader", "code": 14})
        self.assertIn("no leader", str(self.failureResultOf(d, EtcdUnavailableError).value))

    def test_notEtcd(self) -> None:
        """
        An answer that is not JSON (another server, an etcd without the
        C{/v3} gateway) is L{EtcdProtocolError}, which asks whether this is
        etcd 3.4 or later and names C{--registry}.
        """
        d = self.client.get("k")
        self.agent.answer(404, b"404 page not found\n")
        text = str(self.failureResultOf(d, EtcdProtocolError).value)
        self.assertIn("HTTP 404", text)
        self.assertIn("404 page not found", text)
        self.assertIn("etcd 3.4 or later", text)
        self.assertIn("--registry", text)

    def test_refused(self) -> None:
        """
        A refused connection is L{EtcdUnavailableError}: etcd unavailable at
        the URL, connection refused, is etcd running, which setting.
        """
        d = self.client.get("k")
        self.agent.requests[-1][4].errback(ConnectionRefusedError())
        text = str(self.failureResultOf(d, EtcdUnavailableError).value)
        self.assertEqual(
            text, "etcd is unavailable at http://etcd.test:2379 (connection refused): is etcd running there? "
                  "Check the registry URL (--registry etcd://HOST:PORT[/PREFIX])"
        )

    def test_lostMidAnswer(self) -> None:
        """
        A connection lost before the answer is L{EtcdUnavailableError}.
        """
        d = self.client.get("k")
        self.agent.requests[-1][4].errback(ResponseFailed([Failure(ConnectionLost())]))
        self.assertIn("closed before etcd answered", str(self.failureResultOf(d, EtcdUnavailableError).value))

    def test_timeout(self) -> None:
        """
        A request with no answer within C{timeout} is cancelled and fails
        with L{EtcdUnavailableError} saying how long it waited.
        """
        d = self.client.get("k")
        self.clock.advance(2.9)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        self.assertIn("no answer within 3 s", str(self.failureResultOf(d, EtcdUnavailableError).value))
        self.assertEqual(self.agent.cancelled, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_callerCancels(self) -> None:
        """
        Cancelling a request's L{Deferred} cancels the HTTP request and
        fails with L{CancelledError}, not as an unavailable etcd; no timer
        is left.
        """
        d = self.client.put("k", "v")
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.agent.cancelled, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class WatchTests(ClientTestCase):
    """
    The C{/v3/watch} stream.
    """

    def startWatch(self, revision: int = 0) -> tuple[Any, list[WatchEvent], Any]:
        """
        @param revision: the start revision.
        @return: the watch, the events list and the response stream.
        """
        events: list[WatchEvent] = []
        d = self.client.watchPrefix("/p/", revision, events.append)
        stream = self.agent.stream()
        self.assertNoResult(d)
        stream.deliver(b'{"result":{"header":' + repr(header(5)).replace("'", '"').encode() + b',"created":true}}\n')
        watch = self.successResultOf(d)
        return watch, events, stream

    def test_request(self) -> None:
        """
        The watch asks for the prefix's range from the start revision (as
        a string); the watch knows the revision etcd created it at.
        """
        watch, _, _ = self.startWatch(revision=6)
        self.assertEqual(self.sent(), (b"POST", b"http://etcd.test:2379/v3/watch", {"create_request": {
            "key": b64("/p/"), "range_end": b64("/p0"), "start_revision": "6"}}))
        self.assertTrue(verifyObject(IEtcdWatch, watch))
        self.assertEqual(watch.revision, 5)

    def test_events(self) -> None:
        """
        PUT (no C{type} field: etcd omits the default) and DELETE events
        arrive in order with key, value, revision and lease, whatever the
        chunking.
        """
        _, events, stream = self.startWatch()
        message = (
            b'{"result":{"header":{"revision":"8"},"events":[{"kv":{"key":"' + b64("/p/a").encode()
            + b'","create_revision":"8","mod_revision":"8","version":"1","value":"' + b64("{}").encode()
            + b'","lease":"77"}}]}}\n{"result":{"header":{"revision":"9"},"events":[{"type":"DELETE","kv":{"key":"'
            + b64("/p/a").encode() + b'","mod_revision":"9"}}]}}\n'
        )
        for i in range(len(message)):
            stream.deliver(message[i:i + 1])
        self.assertEqual(events, [WatchEvent("PUT", "/p/a", b"{}", 8, 77), WatchEvent("DELETE", "/p/a", None, 9, 0)])

    def test_canceled(self) -> None:
        """
        A cancel message (compaction) ends the watch with
        L{EtcdWatchCanceledError} carrying the compact revision, and the
        client closes the stream (etcd keeps it open).
        """
        watch, _, stream = self.startWatch(revision=2)
        stream.deliver(b'{"result":{"header":{},"canceled":true,"compact_revision":"4"}}')
        error = self.failureResultOf(watch.whenDone(), EtcdWatchCanceledError).value
        self.assertEqual(error.compactRevision, 4)
        self.assertIn("compacted", str(error))
        self.assertIn("read the keys again", str(error))
        self.assertTrue(stream.transport.closed)

    def test_streamLost(self) -> None:
        """
        A stream that ends (etcd stopped) ends the watch with
        L{EtcdUnavailableError}; so does an error message in the stream.
        """
        watch, _, stream = self.startWatch()
        stream.finish(Failure(ResponseFailed([Failure(ConnectionLost())])))
        self.failureResultOf(watch.whenDone(), EtcdUnavailableError)
        watch, _, stream = self.startWatch()
        stream.deliver(b'{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}}')
        self.assertIn("no leader", str(self.failureResultOf(watch.whenDone(), EtcdUnavailableError).value))

    def test_garbage(self) -> None:
        """
        A stream that is not JSON ends the watch with L{EtcdProtocolError}.
        """
        watch, _, stream = self.startWatch()
        stream.deliver(b"<html>")
        self.failureResultOf(watch.whenDone(), EtcdProtocolError)
        self.assertTrue(stream.transport.closed)

    def test_stop(self) -> None:
        """
        C{stop} closes the stream, fires once it is closed, and no event is
        delivered after it; C{whenDone} fires with C{None}.
        """
        watch, events, stream = self.startWatch()
        d = watch.stop()
        self.assertTrue(stream.transport.closed)
        self.assertIsNone(self.successResultOf(d))
        stream.deliver(b'{"result":{"events":[{"kv":{"key":"' + b64("/p/a").encode() + b'"}}]}}')
        self.assertEqual(events, [])
        self.assertIsNone(self.successResultOf(watch.whenDone()))
        self.assertIsNone(self.successResultOf(watch.stop()))

    def test_listenerFails(self) -> None:
        """
        An C{onEvent} that raises is logged once with its traceback, and
        the next events are still delivered.
        """
        logged = captureEvents(self)
        seen: list[str] = []

        def onEvent(event: WatchEvent) -> None:
            seen.append(event.key)
            if len(seen) == 1:
                raise ZeroDivisionError("listener bug")

        d = self.client.watchPrefix("/p/", 0, onEvent)
        stream = self.agent.stream()
        events = ",".join('{"kv":{"key":"%s"}}' % b64(k) for k in ("/p/a", "/p/b"))
        stream.deliver(b'{"result":{"created":true}}{"result":{"events":[' + events.encode() + b"]}}")
        self.successResultOf(d)
        self.assertEqual(seen, ["/p/a", "/p/b"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(len([e for e in logged if "log_failure" in e]), 1)

    def test_creationTimeout(self) -> None:
        """
        A watch etcd does not confirm within the timeout fails with
        L{EtcdUnavailableError} and its stream is closed.
        """
        d = self.client.watchPrefix("/p/", 0, lambda e: None)
        stream = self.agent.stream()
        self.clock.advance(3.1)
        self.assertIn("no answer within 3 s", str(self.failureResultOf(d, EtcdUnavailableError).value))
        self.assertTrue(stream.transport.closed)

    def test_cancelBeforeResponse(self) -> None:
        """
        Cancelling the watch before etcd answers cancels the request.
        """
        d = self.client.watchPrefix("/p/", 0, lambda e: None)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.agent.cancelled, 1)

    def test_errorStatus(self) -> None:
        """
        A watch request answered with an error status fails with etcd's
        error.
        """
        d = self.client.watchPrefix("/p/", 0, lambda e: None)
        self.agent.answer(400, {"error": "bad", "message": "etcdserver: bad watch", "code": 3})
        self.assertIn("etcdserver: bad watch", str(self.failureResultOf(d, EtcdError).value))

    def test_closeStopsWatches(self) -> None:
        """
        C{close} stops the watches still running.
        """
        watch, _, stream = self.startWatch()
        self.successResultOf(self.client.close())
        self.assertTrue(stream.transport.closed)
        self.assertIsNone(self.successResultOf(watch.whenDone()))


class EtcdSupportTests(SynchronousTestCase):
    """
    The test support's rule for a missing etcd: skip outside CI, fail in
    CI.
    """

    def test_skipOutsideCI(self) -> None:
        """
        Without C{CI=true} a missing etcd skips, saying how to install it.
        """
        self.patch(os, "environ", {k: v for k, v in os.environ.items() if k != "CI"} | {"ETCD_BIN": "/nonexistent/etcd"})
        error = self.assertRaises(SkipTest, etcdsupport.requireEtcd)
        self.assertIn("apt-get install etcd-server", str(error))

    def test_failInCI(self) -> None:
        """
        With C{CI=true} a missing etcd is a failure, not a skip.
        """
        self.patch(os, "environ", dict(os.environ, CI="true", ETCD_BIN="/nonexistent/etcd"))
        error = self.assertRaises(AssertionError, etcdsupport.requireEtcd)
        self.assertIn("CI=true requires the etcd tests to run", str(error))
