"""
Unit tests of one client slot (L{txgetty.client.slot}): its transition
table, and what each transition does, against a pool that is an
L{ISlotOwner <txgetty.interfaces.ISlotOwner>} and a controlled endpoint.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from txgetty.client import slot as _slot

from ...support.clients import _Harness
from ...support.statemachines import docstringDrawing, recordingTable


class SlotTableTests(SynchronousTestCase):
    """
    A slot's life cycle is L{_slot.TRANSITIONS}, applied as written.
    """

    def test_slotFiresThisTable(self) -> None:
        """
        C{Slot.fire} is the table's fire method, on the slot's C{state},
        which starts C{IDLE}.
        """
        self.assertIs(_slot.Slot.fire, _slot.TRANSITIONS.fire)
        self.assertEqual(_slot.TRANSITIONS.attribute, "state")
        self.assertIs(_Harness().client._slots[0].state, _slot.IDLE)

    def test_everyListedTransition(self) -> None:
        """
        Each pair of the table moves a slot to its state, then runs its
        action (a method of L{_slot.Slot}) with the event's arguments.
        """
        ran: list[tuple[Any, str, Any, tuple]] = []
        table = recordingTable(_slot.TRANSITIONS, ran)
        for (state, event), (target, action) in _slot.TRANSITIONS.items():
            slot = _Harness().client._slots[0]
            slot.state = state
            del ran[:]
            self.assertTrue(table.fire(slot, event, "arg"))
            self.assertIs(slot.state, target)
            self.assertEqual(ran, [(slot, action.__name__, target, ("arg",))] if action else [])
            if action is not None:
                self.assertIs(getattr(_slot.Slot, action.__name__), action)

    def test_everyOtherPairIgnored(self) -> None:
        """
        A pair not in the table changes nothing: no state change, no dial,
        no timer.
        """
        for state in _slot.STATES:
            for event in _slot.EVENTS:
                if (state, event) in _slot.TRANSITIONS:
                    continue
                h = _Harness()
                slot = h.client._slots[0]
                slot.state = state
                self.assertFalse(slot.fire(event))
                self.assertIs(slot.state, state)
                self.assertEqual((h.client.dials, h.clock.getDelayedCalls()), (0, []))

    def test_drawing(self) -> None:
        """
        The drawing in the slot module's docstring is the table's diagram.
        """
        self.assertEqual(docstringDrawing(_slot), _slot.TRANSITIONS.diagram())
