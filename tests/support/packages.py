"""
What the tests read of the installed txgetty distribution's metadata.
"""

from __future__ import annotations

from importlib import metadata


def repository() -> str:
    """
    @return: the C{Repository} project URL of the installed metadata, the
        base of README.md's absolute links.
    @raise AssertionError: the metadata has none.
    """
    for entry in metadata.distribution("txgetty").metadata.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip()
    raise AssertionError("the package metadata has no Repository URL")
