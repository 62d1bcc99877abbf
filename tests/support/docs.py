"""
Reading the pages of C{docs/}: their code blocks and the files they show.
"""

from __future__ import annotations

from pathlib import Path
import re

from .examples import ROOT


DOCS = ROOT / "docs"
FILE_HEADER = re.compile(r"# file: (\S+)\n")


def codeBlocks(doc: str, language: str = "python") -> list[tuple[str | None, str]]:
    """
    @param doc: a file name in C{docs/}.
    @param language: the fence's language.
    @return: C{(file name or None, code)} for each block, in order.
    """
    text = (DOCS / doc).read_text(encoding="utf-8")
    blocks = re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)
    out = []
    for block in blocks:
        match = FILE_HEADER.match(block)
        out.append((match.group(1) if match else None, block))
    return out


def docFiles(doc: str) -> dict[str, str]:
    """
    @param doc: a file name in C{docs/}.
    @return: the code of each C{# file:} block, by file name.
    """
    return {name: code for name, code in codeBlocks(doc) if name is not None}


def writeFiles(directory: Path, files: dict[str, str]) -> Path:
    """
    @param directory: where to write (created if needed).
    @param files: file contents by name.
    @return: C{directory}.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, code in files.items():
        (directory / name).write_text(code, encoding="utf-8")
    return directory


def onFreePort(code: str) -> str:
    """
    @param code: a document's code that listens on tcp port 8090.
    @return: the same code listening on port 0.
    """
    changed = code.replace('"tcp:8090:interface=127.0.0.1"', '"tcp:0:interface=127.0.0.1"')
    assert changed != code, "the code no longer listens on tcp:8090:interface=127.0.0.1"
    return changed
