"""
Scraping a L{MetricsService <txgetty.metrics.MetricsService>} over HTTP, and
Prometheus's promtool (C{.ci/run} installs Debian's C{prometheus}).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from .components import requireComponent
from .net import bounded


def requirePromtool() -> str:
    """
    @return: the promtool binary.
    @raise SkipTest: there is none, outside CI (the reason is printed once).
    @raise AssertionError: there is none and C{CI=true}.
    """
    return requireComponent(os.environ.get("PROMTOOL_BIN") or shutil.which("promtool"), "the promtool check",
                            "promtool is not installed (apt-get install prometheus, or set PROMTOOL_BIN)")


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
