"""
Prometheus metrics, health and readiness for txgetty (the C{metrics}
extra: C{pip install 'txgetty[metrics]'}).

  - L{TxGettyCollector}: a prometheus_client collector reading txgetty's
    own counters at scrape time (register it in your own registry);
  - L{MetricsService}: C{/metrics}, C{/healthz}, C{/readyz} on a server
    endpoint (what C{twistd -n txgetty --metrics ENDPOINT} runs);
  - L{metricsSite}, L{MetricsResource}, L{Readiness}: the pieces, to mount
    in an application's own twisted.web site.

See docs/observability.md.
"""

from __future__ import annotations

from .collector import METRICS, TxGettyCollector
from .web import MetricsResource, MetricsService, Readiness, metricsSite, serverCheck

__all__ = ["METRICS", "MetricsResource", "MetricsService", "Readiness", "TxGettyCollector", "metricsSite",
           "serverCheck"]
