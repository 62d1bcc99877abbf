"""
The twistd/twist plugin of txgetty: C{twistd -n txgetty --help}.
"""

from twisted.application.service import ServiceMaker

txgetty = ServiceMaker(
    "txgetty",
    "txgetty.tools.tap",
    "getty-style packet server: echo in getty's hello framing on tcp 127.0.0.1:8090 by default",
    "txgetty",
)
