"""
Scraping a L{MetricsService <txgetty.metrics.MetricsService>} over HTTP, and
Prometheus's promtool (C{.ci/run} installs Debian's C{prometheus}).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import SkipTest
from twisted.web.client import Agent, readBody

from .net import bounded

_told: list[bool] = []


def requirePromtool() -> str:
    """
    @return: the promtool binary.
    @raise SkipTest: there is none, outside CI (the reason is printed once).
    @raise AssertionError: there is none and C{CI=true}.
    """
    binary = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool")
    if binary is not None:
        return binary
    reason = "promtool is not installed (apt-get install prometheus, or set PROMTOOL_BIN)"
    if os.environ.get("CI") == "true":
        raise AssertionError(f"{reason}; CI=true requires the promtool check to run")
    if not _told:
        print(f"skipping the promtool check: {reason}")
        _told.append(True)
    raise SkipTest(reason)


async def get(port: Any, path: str) -> tuple[int, str]:
    """
    @param port: the metrics service's listening port.
    @param path: C{/metrics}, C{/healthz}, C{/readyz}.
    @return: the status code and the body.
    """
    address = port.getHost()
    url = f"http://127.0.0.1:{address.port}{path}".encode("ascii")
    response = await bounded(Agent(reactor).request(b"GET", url), f"GET {path}")
    body = await bounded(readBody(response), f"the body of {path}")
    return response.code, body.decode("utf-8")
