"""
Reading txgetty's log calls from its source (with L{ast}), and the table of
log fields of docs/observability.md ("Logs"), to check one against the other.

A log call is C{_log.M(...)}, C{log.M(...)} or C{self.log.M(...)} with C{M}
one of L{METHODS}; its format is its first argument, its fields its
keywords (C{**fields} is followed to the C{dict(...)} it was built from, in
the same function, or to the C{dict(...)} a helper of txgetty returns). A
L{txgetty.tally.Tally} logs its two formats with the keywords of the
C{.count(...)} calls of its module plus C{count}, C{total} and
C{interval}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from string import Formatter
import ast
import io
import re
import tokenize

import txgetty

from .docs import DOCS

#: The methods of a L{twisted.logger.Logger} that emit an event.
METHODS = frozenset({"debug", "info", "warn", "error", "critical", "failure"})
#: Keywords of a logger call that are not fields.
NOT_FIELDS = frozenset({"level"})
#: The fields a L{txgetty.tally.Tally} adds to its events.
TALLY_FIELDS = frozenset({"count", "total", "interval"})
PACKAGE = Path(txgetty.__file__).parent


@dataclass
class LogCall:
    """
    One log call in txgetty's source.

    @ivar where: C{path:line}.
    @ivar method: C{info}, C{failure}, ...
    @ivar formats: its format strings (several when it picks one from a
        table), or C{None} when the format is not a literal.
    @ivar fields: the field names it passes.
    @ivar open: whether some fields could not be resolved (a C{**} of
        something the scan cannot follow).
    @ivar levelArg: the C{level} it passes (the source text), if any.
    """

    where: str
    method: str
    formats: list[str] | None
    fields: set[str] = field(default_factory=set)
    open: bool = False
    levelArg: str | None = None


def documentedFields() -> dict[str, str]:
    """
    @return: the fields the "Logs" section's table of docs/observability.md
        lists, with the text of their row.
    """
    text = (DOCS / "observability.md").read_text(encoding="utf-8")
    section = text.split("\n## Logs\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([A-Za-z_]+)` \|(.*)", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def formatFields(fmt: str) -> set[str]:
    """
    @param fmt: a L{twisted.logger} format string.
    @return: the field names it refers to (C{{session!r}} → C{session},
        C{{a.b}} → C{a}).
    """
    names = set()
    for _, name, spec, _ in Formatter().parse(fmt):
        if name is not None:
            names.add(re.split(r"[.\[]", name, maxsplit=1)[0])
        if spec:
            names |= formatFields(spec)
    return names


def _countMethodTokens(text: str) -> int:
    """
    @param text: Python source.
    @return: how many times its code (not its strings or comments) has
        C{log.M} or C{_log.M} with C{M} one of L{METHODS}.
    """
    names = [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline)
             if t.type in (tokenize.NAME, tokenize.OP)]
    return sum(1 for i in range(len(names) - 2)
               if names[i] in ("_log", "log") and names[i + 1] == "." and names[i + 2] in METHODS)


def _isLoggerMethod(node: ast.AST) -> bool:
    """
    @return: whether C{node} is C{_log.M}, C{log.M} or C{self.log.M}.
    """
    if not (isinstance(node, ast.Attribute) and node.attr in METHODS):
        return False
    receiver = node.value
    if isinstance(receiver, ast.Name):
        return receiver.id in ("_log", "log")
    return isinstance(receiver, ast.Attribute) and receiver.attr in ("_log", "log")


class _Module:
    """
    One module's tree, with what the scan looks up in it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rel = path.relative_to(PACKAGE.parent).as_posix()
        self.text = path.read_text(encoding="utf-8")
        self.tree = ast.parse(self.text)
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.constants: dict[str, ast.AST] = {}
        for node in self.tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and node.value is not None:
                        self.constants[target.id] = node.value

    def function(self, node: ast.AST) -> ast.AST:
        """
        @return: the innermost function around C{node} (or the module).
        """
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node
        return self.tree


class Scan:
    """
    Every log call of txgetty's source.

    @ivar calls: the calls found.
    @ivar textCounts: per module, the logger methods a regular expression
        sees in its text (to tell that the scan missed none).
    @ivar methodCounts: per module, the logger methods the scan saw.
    @ivar unhandled: logger methods used other than called or named by an
        alias that is called (C{emit = _log.warn if e else _log.info}).
    @ivar added: fields set on events outside log calls (the supervisor's
        C{event.setdefault("worker", ...)} on its workers' events).
    """

    def __init__(self, package: Path = PACKAGE) -> None:
        self.modules = [_Module(p) for p in sorted(package.rglob("*.py"))]
        self.helpers: dict[str, ast.AST] = {}
        for module in self.modules:
            for node in ast.walk(module.tree):
                if isinstance(node, ast.FunctionDef):
                    self.helpers.setdefault(node.name, node)
        self.calls: list[LogCall] = []
        self.textCounts: dict[str, int] = {}
        self.methodCounts: dict[str, int] = {}
        self.unhandled: list[str] = []
        self.added: dict[str, str] = {}
        for module in self.modules:
            self.textCounts[module.rel] = _countMethodTokens(module.text)
            self._scan(module)

    def _aliases(self, module: _Module) -> set[str]:
        """
        @return: the names assigned a logger method (or a choice of two) in
            the module; the other uses of a method go to L{unhandled}.
        """
        aliases = set()
        count = 0
        for node in ast.walk(module.tree):
            if not _isLoggerMethod(node):
                continue
            count += 1
            parent = module.parents[node]
            if isinstance(parent, ast.Call) and parent.func is node:
                continue
            if isinstance(parent, ast.IfExp) and node is not parent.test:
                parent = module.parents[parent]
            if (isinstance(parent, ast.Assign) and len(parent.targets) == 1
                    and isinstance(parent.targets[0], ast.Name)):
                aliases.add(parent.targets[0].id)
            else:
                self.unhandled.append(f"{module.rel}:{node.lineno}")
        self.methodCounts[module.rel] = count
        return aliases

    def _scan(self, module: _Module) -> None:
        tallyFields: set[str] = set()
        tallies = []
        aliases = self._aliases(module)
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and (
                _isLoggerMethod(node.func) or isinstance(node.func, ast.Name) and node.func.id in aliases
            ):
                self.calls.append(self._call(module, node))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Tally":
                tallies.append(node)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "count" and node.keywords):
                tallyFields |= {k.arg for k in node.keywords if k.arg}
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "setdefault" and isinstance(node.func.value, ast.Name)
                  and node.func.value.id == "event" and node.args and isinstance(node.args[0], ast.Constant)):
                self.added[node.args[0].value] = f"{module.rel}:{node.lineno}"
        for node in tallies:
            formats = [a.value for a in node.args[1:3] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            self.calls.append(LogCall(
                f"{module.rel}:{node.lineno}", "tally", formats if len(formats) == 2 else None,
                tallyFields | TALLY_FIELDS,
            ))

    def _call(self, module: _Module, node: ast.Call) -> LogCall:
        where = f"{module.rel}:{node.lineno}"
        formats = self._formats(module, node.args[0]) if node.args else None
        method = node.func.attr if isinstance(node.func, ast.Attribute) else "alias"
        call = LogCall(where, method, formats)
        if call.method == "failure":
            for arg in node.args[1:]:
                if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "LogLevel":
                    call.levelArg = ast.unparse(arg)
        for keyword in node.keywords:
            if keyword.arg == "level":
                call.levelArg = ast.unparse(keyword.value)
            elif keyword.arg is not None:
                call.fields.add(keyword.arg)
            else:
                self._expand(module, node, keyword.value, call)
        return call

    def _formats(self, module: _Module, arg: ast.AST) -> list[str] | None:
        """
        @return: the format strings of a format argument: a literal, or an
            item of a module-level dict of literals; C{None} otherwise.
        """
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return [arg.value]
        if isinstance(arg, ast.Subscript) and isinstance(arg.value, ast.Name):
            table = module.constants.get(arg.value.id)
            if isinstance(table, ast.Dict) and all(
                isinstance(v, ast.Constant) and isinstance(v.value, str) for v in table.values
            ):
                return [v.value for v in table.values]  # type: ignore[union-attr]
        return None

    def _expand(self, module: _Module, at: ast.AST, value: ast.AST, call: LogCall) -> None:
        """
        Add the fields of a C{**value} to C{call}.
        """
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            if value.func.id == "dict":
                self._dictFields(module, at, value, call)
                return
            helper = self.helpers.get(value.func.id)
            if helper is not None:
                returns = [n.value for n in ast.walk(helper) if isinstance(n, ast.Return) and n.value is not None]
                if returns and all(isinstance(r, ast.Call) and isinstance(r.func, ast.Name)
                                   and r.func.id == "dict" for r in returns):
                    for r in returns:
                        self._dictFields(module, r, r, call)  # type: ignore[arg-type]
                    return
        elif isinstance(value, ast.Name):
            function = module.function(at)
            found = False
            for node in ast.walk(function):
                if (isinstance(node, ast.Assign) and len(node.targets) == 1
                        and isinstance(node.targets[0], ast.Name) and node.targets[0].id == value.id):
                    self._expand(module, node, node.value, call)
                    found = True
                elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                      and isinstance(node.targets[0], ast.Subscript)
                      and isinstance(node.targets[0].value, ast.Name) and node.targets[0].value.id == value.id
                      and isinstance(node.targets[0].slice, ast.Constant)):
                    call.fields.add(node.targets[0].slice.value)
            if found:
                return
        call.open = True

    def _dictFields(self, module: _Module, at: ast.AST, node: ast.Call, call: LogCall) -> None:
        for keyword in node.keywords:
            if keyword.arg is not None:
                call.fields.add(keyword.arg)
            else:
                self._expand(module, at, keyword.value, call)

    def usedFields(self) -> dict[str, list[str]]:
        """
        @return: every field a call passes or an event gets, with where.
        """
        used: dict[str, list[str]] = {}
        for call in self.calls:
            for name in call.fields - NOT_FIELDS:
                if name.startswith("log_"):
                    continue  # Twisted's own (log_system, ...)
                used.setdefault(name, []).append(call.where)
        for name, where in self.added.items():
            used.setdefault(name, []).append(where)
        return used
