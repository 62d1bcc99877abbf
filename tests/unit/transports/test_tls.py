"""
Unit tests of the TLS settings (L{txgetty.transports.tls}): what they
accept and the errors for the rest.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from txgetty.errors import ConfigError
from txgetty.server import Server
from txgetty.transports.tls import TLSServerSettings

from ...support.certs import testCertificates


TLS = "tls:0:interface=127.0.0.1"


class TLSSettingsTests(TestCase):
    """
    L{TLSServerSettings} turns every bad file into a L{ConfigError} that
    names the option to fix.
    """

    def setUp(self) -> None:
        """
        Make (or reuse) the test certificates and a file with no PEM in it.
        """
        self.pki = testCertificates()
        self.noPEM = self.mktemp()
        with open(self.noPEM, "w") as f:
            f.write("this file holds no PEM block at all\n")
        self.missing = self.mktemp()

    def assertConfigError(self, settings: TLSServerSettings, *needles: str) -> str:
        """
        @param settings: settings that must fail to load.
        @param needles: texts the error message must contain.
        @return: the message.
        """
        error = self.assertRaises(ConfigError, settings.options)
        message = str(error)
        for needle in needles:
            self.assertIn(needle, message)
        return message

    def test_goodSettingsLoad(self) -> None:
        """
        The test key, certificate, chain and client CA load without error.
        """
        p = self.pki
        TLSServerSettings(p.serverKey, p.serverCert, chain=p.caCert, clientCA=p.caCert).options()

    def test_missingFiles(self) -> None:
        """
        A missing key, certificate or client-CA file gives a ConfigError
        naming --tls-key, --tls-cert or --tls-client-ca and the path.
        """
        p = self.pki
        self.assertConfigError(
            TLSServerSettings(self.missing, p.serverCert), "--tls-key", self.missing
        )
        self.assertConfigError(
            TLSServerSettings(p.serverKey, self.missing), "--tls-cert", self.missing
        )
        self.assertConfigError(
            TLSServerSettings(p.serverKey, p.serverCert, clientCA=self.missing),
            "--tls-client-ca", self.missing,
        )

    def test_filesWithoutPEM(self) -> None:
        """
        A key, certificate, chain or client-CA file with no PEM in it gives a
        ConfigError naming its option.
        """
        p = self.pki
        self.assertConfigError(TLSServerSettings(self.noPEM, p.serverCert), "--tls-key", self.noPEM)
        self.assertConfigError(
            TLSServerSettings(p.serverKey, self.noPEM), "--tls-cert", "no PEM certificate"
        )
        self.assertConfigError(
            TLSServerSettings(p.serverKey, p.serverCert, chain=self.noPEM), "--tls-chain"
        )
        self.assertConfigError(
            TLSServerSettings(p.serverKey, p.serverCert, clientCA=self.noPEM),
            "--tls-client-ca", "no PEM certificate",
        )

    def test_keyDoesNotMatchCertificate(self) -> None:
        """
        A private key that is not the certificate's gives a ConfigError
        naming both --tls-key and --tls-cert.
        """
        p = self.pki
        message = self.assertConfigError(
            TLSServerSettings(p.clientKey, p.serverCert),
            "--tls-key", "--tls-cert", "is not the key of the certificate",
        )
        self.assertIn(p.clientKey, message)


    def test_serverReportsBadFilesAtConstruction(self) -> None:
        """
        A Server with a tls: endpoint checks the files when it is made: a
        bad file, or no key and certificate at all, raises ConfigError
        naming the options, before anything listens.
        """
        bad = TLSServerSettings(self.missing, self.pki.serverCert)
        error = self.assertRaises(
            ConfigError, Server, [TLS], lambda s: None, reactor=reactor, tls=bad
        )
        self.assertIn("--tls-key", str(error))
        error = self.assertRaises(ConfigError, Server, [TLS], lambda s: None, reactor=reactor)
        self.assertIn("--tls-key", str(error))
        self.assertIn("--tls-cert", str(error))
