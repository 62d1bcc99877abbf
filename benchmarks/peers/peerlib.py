"""What the comparison peers share: their command line (--host, --port) and the fd limit.

The peers run as scripts (``python peers/tw_raw.py ...``), so this module is found beside them.
"""

from __future__ import annotations

import argparse
import resource
from typing import Any


def peer_args(doc: str | None, argv: Any = None, *, byteorder: bool = False,
              raise_nofile: bool = True) -> argparse.Namespace:
    """Parse a peer's options: --host (default 127.0.0.1), --port and, with byteorder,
    --byteorder big|little (default big); then raise the fd limit to the hard limit (unless
    raise_nofile is false), for the many connections of scale.py."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    if byteorder:
        p.add_argument("--byteorder", choices=["big", "little"], default="big")
    a = p.parse_args(argv)
    if raise_nofile:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return a
