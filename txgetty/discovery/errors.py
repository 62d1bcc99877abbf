"""
The errors of the etcd client and of service discovery.

Each message says what happened, why (as far as the client can tell) and
what to change; the registry URL is the C{--registry etcd://HOST:PORT}
setting of the servers and clients that use discovery.
"""

from __future__ import annotations

from ..errors import TxGettyError

#: What a message suggests when etcd cannot be reached.
REGISTRY_HINT = "is etcd running there? Check the registry URL (--registry etcd://HOST:PORT[/PREFIX])"


class EtcdError(TxGettyError):
    """
    etcd refused or failed a request.

    @ivar url: the etcd endpoint (C{http://HOST:PORT}).
    @ivar path: the gateway path called (C{/v3/kv/put}), or C{""}.
    @ivar code: the gRPC status code etcd gave (C{5}: not found, C{14}:
        unavailable, ...), or C{None}.
    @ivar reason: etcd's own message, or the client's description.
    """

    def __init__(
        self, url: str, path: str, reason: str, code: int | None = None, hint: str = "", message: str = ""
    ) -> None:
        """
        @param url: the etcd endpoint.
        @param path: the gateway path called.
        @param reason: what etcd said, or what went wrong.
        @param code: etcd's gRPC status code, if it gave one.
        @param hint: what to change, appended to the message.
        @param message: the whole message instead of the generated one.
        """
        self.url = url
        self.path = path
        self.reason = reason
        self.code = code
        if not message:
            where = f"{url}{path}" if path else url
            codeText = f" (gRPC code {code})" if code is not None else ""
            message = f"etcd at {where} failed: {reason}{codeText}"
            message = f"{message}; {hint}" if hint else message
        super().__init__(message)


class EtcdUnavailableError(EtcdError):
    """
    etcd could not be reached or did not answer in time: connection refused
    or lost, a timeout, or etcd itself saying it is unavailable (no leader).
    Worth retrying later.
    """

    def __init__(self, url: str, path: str, reason: str, code: int | None = None) -> None:
        """
        @param url: the etcd endpoint.
        @param path: the gateway path called.
        @param reason: what went wrong (C{"connection refused"}).
        @param code: etcd's gRPC status code (14), if it answered.
        """
        codeText = f", gRPC code {code}" if code is not None else ""
        EtcdError.__init__(
            self, url, path, reason, code, message=f"etcd is unavailable at {url} ({reason}{codeText}): {REGISTRY_HINT}"
        )


class EtcdLeaseNotFoundError(EtcdError):
    """
    The lease named in a request does not exist (it expired or was revoked).

    @ivar leaseID: the lease asked for.
    @ivar etcdMessage: etcd's message.
    """

    def __init__(self, url: str, path: str, leaseID: int | None, reason: str = "requested lease not found") -> None:
        """
        @param url: the etcd endpoint.
        @param path: the gateway path called.
        @param leaseID: the lease, if known.
        @param reason: etcd's message.
        """
        self.leaseID = leaseID
        self.etcdMessage = reason
        EtcdError.__init__(
            self, url, path, f"{reason} (lease {leaseID})", 5,
            "the lease expired or was revoked: grant a new one",
        )


class EtcdProtocolError(EtcdError):
    """
    What answered is not etcd's v3 JSON gateway, or it sent something the
    client cannot read.
    """

    def __init__(self, url: str, path: str, reason: str) -> None:
        """
        @param url: the endpoint.
        @param path: the gateway path called.
        @param reason: what was wrong with the answer.
        """
        EtcdError.__init__(
            self, url, path, reason, None,
            "is this etcd 3.4 or later (its JSON gateway serves /v3/...)? Check the registry URL (--registry)",
        )


class EtcdWatchCanceledError(EtcdError):
    """
    etcd cancelled a watch, usually because the revision it was to start
    from has been compacted away: read the keys again and watch from the
    new revision.

    @ivar compactRevision: the oldest revision etcd still has, or 0.
    """

    def __init__(self, url: str, prefix: str, compactRevision: int, reason: str) -> None:
        """
        @param url: the etcd endpoint.
        @param prefix: the key prefix watched.
        @param compactRevision: etcd's compact revision (0 if not given).
        @param reason: etcd's cancel reason, if any.
        """
        self.compactRevision = compactRevision
        why = f"revision {compactRevision} and older were compacted" if compactRevision else (reason or "no reason given")
        EtcdError.__init__(
            self, url, "/v3/watch", f"the watch of {prefix!r} was cancelled ({why})", None,
            "read the keys again and watch from the revision of that read",
        )
