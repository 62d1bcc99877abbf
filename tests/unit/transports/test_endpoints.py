"""
Unit tests of L{txgetty.transports.endpoints} and
L{txgetty.transports.addresses}: descriptions split and checked, the
endpoints and labels made of them, WebSocket URLs, port numbers, addresses
as text.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.endpoints import (
    HostnameEndpoint,
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    UNIXClientEndpoint,
    UNIXServerEndpoint,
)
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from txgetty.errors import ConfigError
from txgetty.transports.addresses import checkPort, formatAddress
from txgetty.transports.endpoints import (
    clientEndpoint,
    isTLSDescription,
    parseWebSocketURL,
    serverEndpoint,
    splitDescription,
)
from txgetty.transports.udp import UDPClientEndpoint


class ServerEndpointTests(SynchronousTestCase):
    """
    Listening endpoints from descriptions (L{serverEndpoint}).
    """

    def test_split(self) -> None:
        """
        Descriptions split at unescaped colons, into kind, args and keywords.
        """
        self.assertEqual(
            splitDescription("tls:8443:interface=\\:\\:1:key=a.pem"),
            ("tls", ["8443"], {"interface": "::1", "key": "a.pem"}),
        )

    def test_twistedKinds(self) -> None:
        """
        tcp: and unix: go to Twisted's parser.
        """
        reactor = MemoryReactorClock()
        self.assertIsInstance(serverEndpoint(reactor, "tcp:0:interface=127.0.0.1"), TCP4ServerEndpoint)
        self.assertIsInstance(serverEndpoint(reactor, "unix:/tmp/t.sock"), UNIXServerEndpoint)

    def test_errors(self) -> None:
        """
        Unknown kinds, unknown TLS options and missing files are
        L{ConfigError}s with a hint.
        """
        reactor = MemoryReactorClock()
        for description, needle in (
            ("nope:1", "examples"),
            ("tls:0:bogus=1:key=a:cert=b", "unknown option 'bogus'"),
            ("tls:x:key=a:cert=b", "must be a number 0-65535"),
            ("tls:0", "--tls-key"),
            ("tls:0:key=/nonexistent/k.pem:cert=/nonexistent/c.pem", "cannot read"),
        ):
            with self.assertRaises(ConfigError) as ctx:
                serverEndpoint(reactor, description)
            self.assertIn(needle, str(ctx.exception), description)

    def test_tlsWithFiles(self) -> None:
        """
        A tls: description with valid files makes an SSL endpoint.
        """
        from ...support.certs import testCertificates

        paths = testCertificates()
        endpoint = serverEndpoint(
            MemoryReactorClock(), f"tls:0:interface=127.0.0.1:key={paths.serverKey}:cert={paths.serverCert}"
        )
        self.assertIsInstance(endpoint, SSL4ServerEndpoint)


class DescriptionTests(SynchronousTestCase):
    """
    Splitting descriptions, and telling TLS listeners apart.
    """

    def test_escapes(self) -> None:
        """
        A backslash takes the next character as it is (a colon of an IPv6
        address, a backslash); a trailing backslash is dropped; parts
        without C{=} are positional, in order.
        """
        self.assertEqual(splitDescription("unix:/tmp/a\\\\b:mode=660"), ("unix", ["/tmp/a\\b"], {"mode": "660"}))
        self.assertEqual(splitDescription("tcp:8090:backlog=5:x"), ("tcp", ["8090", "x"], {"backlog": "5"}))
        self.assertEqual(splitDescription("tcp\\"), ("tcp", [], {}))
        self.assertEqual(splitDescription("tcp:a=b=c"), ("tcp", [], {"a": "b=c"}))

    def test_isTLS(self) -> None:
        """
        C{tls:} and C{ssl:} are txgetty's TLS listeners; other kinds, and
        Twisted's C{txgetty-tls:} plugin prefix, are not.
        """
        self.assertEqual(
            [isTLSDescription(d) for d in ("tls:8443", "ssl:8443", "tcp:8443", "txgetty-tls:8443", "ws://h:1/")],
            [True, True, False, False, False],
        )

    def test_tcpPortChecked(self) -> None:
        """
        A C{tcp:} listener's port is checked before Twisted sees it (which
        would take 99999), by position or keyword.
        """
        for description in ("tcp:99999", "tcp:port=99999", "tcp6:-1"):
            with self.assertRaises(ConfigError) as ctx:
                serverEndpoint(MemoryReactorClock(), description)
            self.assertIn("must be a number 0-65535", str(ctx.exception))


class ClientEndpointTests(SynchronousTestCase):
    """
    Client endpoints and their labels (L{clientEndpoint}).
    """

    def test_hostPort(self) -> None:
        """
        C{HOST:PORT} and C{tcp:HOST:PORT} (or C{host=}/C{port=}) dial TCP
        with name resolution; the label is C{tcp:HOST:PORT}, with brackets
        for IPv6.
        """
        reactor = MemoryReactorClock()
        for description, label in (
            ("127.0.0.1:8090", "tcp:127.0.0.1:8090"),
            ("tcp:example.com:80", "tcp:example.com:80"),
            ("tcp:host=localhost:port=81", "tcp:localhost:81"),
            ("[::1]:8090", "tcp:[::1]:8090"),
        ):
            endpoint, got = clientEndpoint(reactor, description)
            self.assertIsInstance(endpoint, HostnameEndpoint, description)
            self.assertEqual(got, label)

    def test_otherKinds(self) -> None:
        """
        C{tls:} (and C{ssl:}) is labelled C{tls:}, C{unix:} dials the path,
        C{udp:} is a connected UDP endpoint.
        """
        reactor = MemoryReactorClock()
        self.assertEqual(clientEndpoint(reactor, "ssl:localhost:8443")[1], "tls:localhost:8443")
        unix, label = clientEndpoint(reactor, "unix:/tmp/x.sock")
        self.assertEqual((type(unix), label), (UNIXClientEndpoint, "unix:/tmp/x.sock"))
        udp, label = clientEndpoint(reactor, "udp:127.0.0.1:9000")
        self.assertEqual((type(udp), label), (UDPClientEndpoint, "udp:127.0.0.1:9000"))

    def test_webSocketLabel(self) -> None:
        """
        A C{ws://} URL is its own label.
        """
        self.assertEqual(clientEndpoint(MemoryReactorClock(), "ws://127.0.0.1:1/chat")[1], "ws://127.0.0.1:1/chat")

    def test_errors(self) -> None:
        """
        What cannot be dialled is a L{ConfigError} that says why and shows
        examples or the accepted options.
        """
        reactor = MemoryReactorClock()
        for description, needle in (
            ("tcp:127.0.0.1", "needs a host and a port"),
            ("tcp:127.0.0.1:0", "must be a number 1-65535"),
            ("tcp:127.0.0.1:http", "must be a number 1-65535"),
            ("unix:", "needs a socket path"),
            ("tls:h:1:verify=no", "unknown option 'verify'"),
            ("ftp:h:1", "examples"),
            ("ws://h:1/?compress=yes", "a ws:// client takes deflate"),
        ):
            with self.assertRaises(ConfigError) as ctx:
                clientEndpoint(reactor, description)
            self.assertIn(needle, str(ctx.exception), description)


class WebSocketURLTests(SynchronousTestCase):
    """
    L{parseWebSocketURL}.
    """

    def test_parts(self) -> None:
        """
        A URL gives whether it is secure, the host, the port, the path
        (C{/} if none) and the query's options (the last value of each).
        """
        self.assertEqual(parseWebSocketURL("wss://example.com:8443/chat?deflate=yes&x=1&x=2"),
                         (True, "example.com", 8443, "/chat", {"deflate": "yes", "x": "2"}))
        self.assertEqual(parseWebSocketURL("ws://127.0.0.1:0"), (False, "127.0.0.1", 0, "/", {}))

    def test_errors(self) -> None:
        """
        A URL without a scheme of its own, a host or a port is refused;
        port 0 only for a listener.
        """
        for url in ("http://h:1/", "ws://:1/", "ws://h/"):
            self.assertRaises(ConfigError, parseWebSocketURL, url)
        with self.assertRaises(ConfigError) as ctx:
            parseWebSocketURL("ws://h:0/", listening=False)
        self.assertIn("1-65535", str(ctx.exception))
        with self.assertRaises(ConfigError) as ctx:
            parseWebSocketURL("ws://h:70000/")
        self.assertIn("0-65535", str(ctx.exception))


class AddressTests(SynchronousTestCase):
    """
    L{checkPort} and L{formatAddress}.
    """

    def test_checkPort(self) -> None:
        """
        A port is a number in range: 0 (any free port) only for a listener;
        text and ints are taken; the message names the description.
        """
        self.assertEqual((checkPort("0", "d", listening=True), checkPort(65535, "d", listening=False)), (0, 65535))
        for text, listening in (("0", False), ("65536", True), ("x", True), (None, True)):
            with self.assertRaises(ConfigError) as ctx:
                checkPort(text, "tcp:thing", listening)
            self.assertIn("'tcp:thing'", str(ctx.exception))

    def test_formatAddress(self) -> None:
        """
        Addresses read as C{kind:host:port}, IPv6 in brackets, UNIX paths
        (C{(unnamed)} for an unbound socket), C{-} for none.
        """
        self.assertEqual(formatAddress(IPv4Address("TCP", "127.0.0.1", 8090)), "tcp:127.0.0.1:8090")
        self.assertEqual(formatAddress(IPv4Address("UDP", "10.0.0.1", 53)), "udp:10.0.0.1:53")
        self.assertEqual(formatAddress(IPv6Address("TCP", "::1", 1)), "tcp:[::1]:1")
        self.assertEqual(formatAddress(UNIXAddress(b"/tmp/s")), "unix:/tmp/s")
        self.assertEqual(formatAddress(UNIXAddress(None)), "unix:(unnamed)")
        self.assertEqual(formatAddress(None), "-")
        self.assertEqual(formatAddress("odd"), "'odd'")
