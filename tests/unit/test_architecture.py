"""
Keep C{docs/architecture.md} true: every import in C{txgetty/} goes only
where the page's table of packages allows, every module of C{txgetty/}
belongs to a row of it, there is no import cycle (at run time or for the
type checker), and every name the page says where to find exists.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import txgetty

from ..support.examples import ROOT

DOC = ROOT / "docs" / "architecture.md"
#: The package's source, wherever it is imported from (the checkout, or a
#: wheel's install).
PACKAGE = Path(txgetty.__file__).resolve().parent
_NAME = re.compile(r"`([\w.]+)`")


def tableRows(heading: str) -> list[list[str]]:
    """
    @param heading: the C{## } heading of the section holding the table.
    @return: the cells of each row of its first table, header excluded.
    """
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def allowedImports() -> dict[str, set[str]]:
    """
    @return: each row of the packages table, and the rows it may import;
        C{foundation} expanded to the rows that may import no more than
        the foundation does (the rows above C{txgetty.transports}).
    """
    rows = tableRows("Packages")
    names = [_NAME.fullmatch(row[0]).group(1) for row in rows]  # type: ignore[union-attr]
    foundation = set(names[: names.index("txgetty.transports")])
    allowed = {}
    for name, row in zip(names, rows):
        may: set[str] = set()
        for item in row[2].split(","):
            item = item.strip()
            if item == "foundation":
                may |= foundation
            elif item not in ("—", ""):
                may.add(_NAME.fullmatch(item).group(1))  # type: ignore[union-attr]
        allowed[name] = may
    return allowed


def modules() -> dict[str, Path]:
    """
    @return: every module of the package, by dotted name (a package by its
        own name, for its C{__init__.py}).
    """
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = ("txgetty",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """
    Every txgetty module a module imports: C{import} and C{from} statements
    anywhere in it (module level, functions, C{if TYPE_CHECKING:}),
    relative or absolute; C{from package import module} counts as an
    import of that module (and of the package).

    @param name: the module's dotted name.
    @param path: its file.
    @param known: every module of the package.
    @return: the dotted names of the txgetty modules it imports.
    """
    isPackage = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                # `import txgetty.rpc.frame` imports each package on the way.
                found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if isPackage else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{a.name}" for a in node.names} & set(known)
            found |= submodules
            # `from package import module` needs only the module (the
            # package is its parent, loaded first anyway); a name that is
            # not a module comes from the package's __init__.
            if target in known and len(submodules) < len(node.names):
                found.add(target)
    found.discard(name)
    return found


def rowOf(name: str, rows: set[str]) -> str | None:
    """
    @param name: a module's dotted name.
    @param rows: the rows of the table.
    @return: the row it belongs to: the longest row that is it or a
        package above it (C{txgetty}, the facade, is only itself).
    """
    best = None
    for row in rows:
        if name == row or (row != "txgetty" and name.startswith(row + ".")):
            if best is None or len(row) > len(best):
                best = row
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """
    The strongly connected components of more than one module (or one that
    imports itself): each is an import cycle.

    @param graph: module -> the modules it imports.
    @return: the cycles, each sorted.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    onStack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(start: str) -> None:
        # Iterative Tarjan: (node, iterator over its successors).
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        onStack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    onStack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in onStack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        onStack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


class ImportRuleTests(SynchronousTestCase):
    """
    The imports of C{txgetty/} follow the table of C{docs/architecture.md}.
    """

    def test_everyModuleHasARow(self) -> None:
        """
        Every module of the package belongs to a row of the table, and
        every row names a module or package that exists.
        """
        rows = set(allowedImports())
        known = modules()
        self.assertEqual(sorted(m for m in known if rowOf(m, rows) is None), [])
        self.assertEqual(sorted(rows - set(known)), [])

    def test_importsGoWhereAllowed(self) -> None:
        """
        Every import from one row into another is one the importing row
        may make.
        """
        allowed = allowedImports()
        known = modules()
        wrong = []
        for name, path in known.items():
            source = rowOf(name, set(allowed))
            for target in sorted(imports(name, path, known)):
                row = rowOf(target, set(allowed))
                if row != source and row not in allowed[source]:  # type: ignore[index]
                    wrong.append(f"{name} imports {target} ({source} may not import {row})")
        self.assertEqual(wrong, [])

    def test_foundationGoesDown(self) -> None:
        """
        A foundation row may import only the rows listed before it.
        """
        allowed = allowedImports()
        names = list(allowed)
        for i, name in enumerate(names[: names.index("txgetty.transports")]):
            self.assertLessEqual(allowed[name], set(names[:i]), name)

    def test_noCycles(self) -> None:
        """
        No import cycle, counting every import (also those made only for
        the type checker).
        """
        known = modules()
        graph = {name: imports(name, path, known) for name, path in known.items()}
        self.assertEqual(cycles(graph), [])


class CheckerTests(SynchronousTestCase):
    """
    The checks above find what they look for.
    """

    def test_importsFound(self) -> None:
        """
        Relative, absolute, nested and C{TYPE_CHECKING} imports are all
        found; C{from package import module} is an import of the module,
        C{from package import name} one of the package.
        """
        known = {m: Path("x.py") for m in ("txgetty", "txgetty.a", "txgetty.b", "txgetty.p", "txgetty.p.c", "txgetty.d")}
        source = (
            "from typing import TYPE_CHECKING\n"
            "from . import a\n"
            "from .p import c\n"
            "from .p import Name\n"
            "if TYPE_CHECKING:\n    from txgetty.b import X\n"
            "def f():\n    import txgetty.d\n"
        )
        path = Path(self.mktemp() + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
        self.assertEqual(imports("txgetty.e", path, known),
                         {"txgetty", "txgetty.a", "txgetty.p", "txgetty.p.c", "txgetty.b", "txgetty.d"})

    def test_cyclesFound(self) -> None:
        """
        A cycle of two and a module importing itself are cycles; a chain is
        not.
        """
        self.assertEqual(cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}), [["a", "b"]])
        self.assertEqual(cycles({"a": {"a"}}), [["a"]])
        self.assertEqual(cycles({"a": {"b"}, "b": {"c"}, "c": set()}), [])


class WhereToFindTests(SynchronousTestCase):
    """
    The page's "Where to find" names exist.
    """

    def test_namesExist(self) -> None:
        """
        Every dotted name in the second column is a module, or an object
        reached from one by attributes.
        """
        missing = []
        rows = tableRows("Where to find")
        self.assertGreater(len(rows), 20)
        for row in rows:
            for name in _NAME.findall(row[1]):
                if not resolves(name):
                    missing.append(name)
        self.assertEqual(missing, [])


def resolves(name: str) -> bool:
    """
    @param name: a dotted name.
    @return: whether its longest module prefix imports and the rest are
        attributes.
    """
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attribute in parts[i:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False
