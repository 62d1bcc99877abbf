"""
What the tests of the life cycles share: the drawing of a transition table
in its module's docstring, and a table like a real one whose actions only
record that they ran.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any
import textwrap

from txgetty.statemachine import Table


def docstringDrawing(module: ModuleType) -> str:
    """
    @param module: a module whose docstring draws its table: a paragraph
        that says C{diagram()} and ends with C{::}, then the drawing as a
        literal block.
    @return: the drawing, dedented.
    @raise AssertionError: the docstring has no such drawing.
    """
    lines = (module.__doc__ or "").splitlines()
    start = None
    for i, line in enumerate(lines):
        if line.rstrip().endswith("::") and "diagram()" in " ".join(lines[max(0, i - 3):i + 1]):
            start = i + 1
            break
    if start is None:
        raise AssertionError(f"{module.__name__}'s docstring has no drawing introduced by diagram() and '::'")
    block: list[str] = []
    for line in lines[start:]:
        if line.strip() and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip("\n")


def recordingTable(table: Table, ran: list[tuple[Any, str, Any, tuple]]) -> Table:
    """
    @param table: a real table.
    @param ran: where the actions record C{(owner, action name, the
        owner's state when it ran, args)}.
    @return: a table with the same rows and state attribute whose actions
        only record (C{None} stays C{None}).
    """
    def recorder(action: Any) -> Any:
        if action is None:
            return None

        def record(owner: Any, *args: Any) -> None:
            ran.append((owner, action.__name__, getattr(owner, table.attribute), args))

        record.__name__ = action.__name__
        return record

    return Table([(s, e, t, recorder(a)) for s, e, t, a in table.rows], attribute=table.attribute)


def assertEveryListedTransition(
    case: Any, table: Table, makeOwner: Any, ownerClass: type | None = None, *args: Any
) -> None:
    """
    Check every row of a table: firing its event on an owner in its source
    state moves the owner to its target state, then runs exactly its
    action, with the owner and the event's arguments.

    @param case: the test case (its assertions).
    @param table: the real table.
    @param makeOwner: makes a fresh owner for each row.
    @param ownerClass: if given, each action must be this class's own
        attribute of that name (not shadowed by another class).
    @param args: the event's arguments (default: one, C{"arg"}).
    """
    args = args or ("arg",)
    ran: list[tuple[Any, str, Any, tuple]] = []
    recording = recordingTable(table, ran)
    for (state, event), (target, action) in table.items():
        owner = makeOwner()
        setattr(owner, table.attribute, state)
        del ran[:]
        case.assertTrue(recording.fire(owner, event, *args), (state, event))
        case.assertIs(getattr(owner, table.attribute), target, (state, event))
        case.assertEqual(ran, [(owner, action.__name__, target, args)] if action else [], (state, event))
        if action is not None and ownerClass is not None:
            case.assertIs(getattr(ownerClass, action.__name__), action, (state, event))
