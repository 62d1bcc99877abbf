"""
Unit tests of L{txgetty.statemachine}: states and their flags, tables built
from rows, the fire method a table makes for its owner, and the drawing.
"""

from __future__ import annotations

from typing import Any
import types

from twisted.trial.unittest import SynchronousTestCase

from txgetty import statemachine
from txgetty.statemachine import State, Table

from ..support.statemachines import docstringDrawing


IDLE = State("IDLE")
RUNNING = State("RUNNING", busy=True)


class _Worker:
    """
    The owner of the example table of the module's docstring, declared as
    it shows: the table at the end of the class body.
    """

    def __init__(self) -> None:
        self._state = IDLE
        self.calls: list[tuple[str, Any, tuple]] = []

    def _doStart(self, *args: Any) -> None:
        self.calls.append(("_doStart", self._state, args))

    TRANSITIONS = Table([
        (IDLE, "start", RUNNING, _doStart),
        (RUNNING, "stop", IDLE, None),
    ])
    _fire = TRANSITIONS.fire


EXAMPLE = _Worker.TRANSITIONS


class StateTests(SynchronousTestCase):
    """
    A state is a name and flags, compared by identity.
    """

    def test_nameAndFlags(self) -> None:
        """
        The flags given are attributes of the state and its C{flags}; its
        repr is its name.
        """
        state = State("OPEN", writable=True, closed=False)
        self.assertEqual((state.name, state.writable, state.closed), ("OPEN", True, False))
        self.assertEqual(state.flags, {"writable": True, "closed": False})
        self.assertEqual(repr(state), "OPEN")

    def test_identity(self) -> None:
        """
        Two states of the same name and flags are different states.
        """
        self.assertNotEqual(State("A"), State("A"))
        self.assertEqual(len({State("A"), State("A")}), 2)

    def test_flagCalledName(self) -> None:
        """
        A flag cannot be called C{name}: that is the state's name.
        """
        self.assertRaises(ValueError, State, "A", name=True)


class TableTests(SynchronousTestCase):
    """
    A table is a mapping C{(state, event) -> (next state, action)} built
    from rows, checked when it is built.
    """

    def test_mapping(self) -> None:
        """
        Each row is one item of the mapping; C{rows} keeps them as given,
        and the first row's source is the initial state.
        """
        self.assertEqual(dict(EXAMPLE), {(IDLE, "start"): (RUNNING, _Worker._doStart), (RUNNING, "stop"): (IDLE, None)})
        self.assertIs(_Worker._fire, EXAMPLE.fire)
        self.assertEqual(len(EXAMPLE), 2)
        self.assertIn((IDLE, "start"), EXAMPLE)
        self.assertNotIn((IDLE, "stop"), EXAMPLE)
        self.assertIsNone(EXAMPLE.get((RUNNING, "start")))
        self.assertEqual(EXAMPLE.rows[0], (IDLE, "start", RUNNING, _Worker._doStart))
        self.assertIs(EXAMPLE.initial, IDLE)
        self.assertEqual(EXAMPLE.attribute, "_state")

    def test_statesAndEvents(self) -> None:
        """
        C{states()} lists the sources in the order of their first row, then
        the states that are only targets; C{events()} the events in the
        order of first mention.
        """
        a, b, c, d = State("A"), State("B"), State("C"), State("D")
        table = Table([(b, "go", c, None), (a, "go", b, None), (a, "end", d, None), (b, "back", a, None)])
        self.assertEqual(table.states(), (b, a, c, d))
        self.assertEqual(table.events(), ("go", "end", "back"))

    def test_flagsEverywhere(self) -> None:
        """
        A flag that one state of a table has is C{False} on the others.
        """
        plain, marked = State("PLAIN"), State("MARKED", final=True)
        Table([(plain, "end", marked, None)])
        self.assertIs(plain.final, False)
        self.assertIs(marked.final, True)

    def test_refusedRows(self) -> None:
        """
        A table is refused at once, with a message naming the row, when a
        pair is listed twice, a state is not a L{State}, an event is not a
        C{str}, or an action is neither a function nor C{None} (such as a
        method name); and when it is empty or its attribute is not a name.
        """
        a, b = State("A"), State("B")
        error = self.assertRaises(ValueError, Table, [(a, "go", b, None), (a, "go", a, None)])
        self.assertIn("A --go--> is listed twice", str(error))
        self.assertRaises(TypeError, Table, [("A", "go", b, None)])
        self.assertRaises(TypeError, Table, [(a, 1, b, None)])
        error = self.assertRaises(ValueError, Table, [(a, "go", b, "_doGo")])
        self.assertIn("'_doGo'", str(error))
        self.assertRaises(ValueError, Table, [])
        self.assertRaises(ValueError, Table, [(a, "go", b, None)], attribute="my state")
        self.assertRaises(ValueError, Table, [(a, "go", b, None)], attribute="class")


class FireTests(SynchronousTestCase):
    """
    The fire method a table makes: the state first, then the action.
    """

    def test_transition(self) -> None:
        """
        A listed pair sets the owner's state, then runs the action with
        the owner and the event's arguments (it sees the new state), and
        says C{True}.
        """
        worker = _Worker()
        self.assertTrue(EXAMPLE.fire(worker, "start", 1, 2))
        self.assertIs(worker._state, RUNNING)
        self.assertEqual(worker.calls, [("_doStart", RUNNING, (1, 2))])

    def test_argumentCounts(self) -> None:
        """
        The action gets exactly the arguments the event was fired with, from
        none to three (C{None} is an argument like any other); a fourth is
        a C{TypeError}.
        """
        for args in [(), (None,), (1, None), (1, 2, 3)]:
            worker = _Worker()
            self.assertTrue(EXAMPLE.fire(worker, "start", *args))
            self.assertEqual(worker.calls, [("_doStart", RUNNING, args)])
        self.assertRaises(TypeError, EXAMPLE.fire, _Worker(), "start", 1, 2, 3, 4)

    def test_noAction(self) -> None:
        """
        A row without an action only changes the state.
        """
        worker = _Worker()
        worker._state = RUNNING
        self.assertTrue(EXAMPLE.fire(worker, "stop"))
        self.assertIs(worker._state, IDLE)
        self.assertEqual(worker.calls, [])

    def test_unlistedIgnored(self) -> None:
        """
        A pair not in the table keeps the state, runs nothing and says
        C{False} (a late result after a stop, a second stop).
        """
        worker = _Worker()
        for event in ("stop", "unknown"):
            self.assertFalse(EXAMPLE.fire(worker, event, "late"))
        self.assertIs(worker._state, IDLE)
        self.assertEqual(worker.calls, [])

    def test_asMethod(self) -> None:
        """
        The fire method is a plain function: set on the owner's class it is
        a method, C{owner._fire(event)}, and the owner holds nothing but
        its state (no machine object per owner).
        """

        class Owner(_Worker):
            _fire = EXAMPLE.fire

        self.assertIsInstance(EXAMPLE.fire, types.FunctionType)
        owner = Owner()
        self.assertTrue(owner._fire("start"))
        self.assertIs(owner._state, RUNNING)
        self.assertEqual(sorted(vars(owner)), ["_state", "calls"])

    def test_otherAttribute(self) -> None:
        """
        With C{attribute}, the state is kept in that attribute of the
        owner, and an owner with C{__slots__} works.
        """
        a, b = State("A"), State("B")
        table = Table([(a, "go", b, None)], attribute="state")

        class Owner:
            __slots__ = ("state",)

        owner = Owner()
        owner.state = a
        self.assertTrue(table.fire(owner, "go"))
        self.assertIs(owner.state, b)

    def test_actionRaises(self) -> None:
        """
        An action's exception reaches the caller of fire, the new state
        already set.
        """
        a, b = State("A"), State("B")

        def fail(owner: Any) -> None:
            raise ZeroDivisionError()

        table = Table([(a, "go", b, fail)])

        class Owner:
            _state = a

        owner = Owner()
        self.assertRaises(ZeroDivisionError, table.fire, owner, "go")
        self.assertIs(owner._state, b)


class DiagramTests(SynchronousTestCase):
    """
    The drawing of a table.
    """

    def test_format(self) -> None:
        """
        One block per state (name, then its true flags, sorted), one line
        per transition in row order (event, C{->}, next state, the action's
        name or C{-}) in aligned columns; final states close the drawing.
        """
        new, open_, gone = State("NEW"), State("OPEN", writable=True, live=True), State("GONE", final=True)

        def _doOpen(owner: Any) -> None:
            pass

        table = Table([(new, "connect", open_, _doOpen), (open_, "lost", gone, None), (new, "lost", gone, None)])
        self.assertEqual(table.diagram(), "\n".join([
            "NEW",
            "  connect -> OPEN _doOpen",
            "  lost    -> GONE -",
            "OPEN (live, writable)",
            "  lost    -> GONE -",
            "GONE (final)",
        ]))

    def test_moduleExample(self) -> None:
        """
        The module's docstring draws its example table as C{diagram()}
        does.
        """
        self.assertEqual(docstringDrawing(statemachine), EXAMPLE.diagram())

    def test_drawingFound(self) -> None:
        """
        The test helper finds the drawing after the paragraph that names
        C{diagram()}, and says so when there is none.
        """
        module = types.ModuleType("m", "Intro.\n\nAs C{T.diagram()} draws it::\n\n  A\n    go -> B -\n\nAfter.\n")
        self.assertEqual(docstringDrawing(module), "A\n  go -> B -")
        self.assertRaises(AssertionError, docstringDrawing, types.ModuleType("m", "No drawing::\n\n  A\n"))
