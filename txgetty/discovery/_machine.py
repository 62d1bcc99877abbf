"""
A transition table applied to an owner object: each C{(state, event)} pair
names the next state and the owner's method to run.  Pairs not in the table
are ignored (a late result after a stop, a second stop), so every change of
state is visible in one place.
"""

from __future__ import annotations

from typing import Any, Mapping

Table = Mapping[tuple[str, str], tuple[str, "str | None"]]


class StateMachine:
    """
    The current state of an owner and the table that moves it.

    @ivar state: the current state.
    @ivar table: C{(state, event) -> (next state, action method name)}.
    """

    def __init__(self, owner: object, table: Table, initial: str) -> None:
        """
        @param owner: the object whose methods the actions are.
        @param table: the transition table.
        @param initial: the first state.
        @raise ValueError: an action of the table is not a method of
            C{owner} (a typo caught at construction, not at run time).
        """
        missing = sorted({a for _, a in table.values() if a and not callable(getattr(owner, a, None))})
        if missing:
            raise ValueError(f"{type(owner).__name__} lacks the actions {missing}")
        self._owner = owner
        self.table = table
        self.state = initial

    def fire(self, event: str, *args: Any) -> bool:
        """
        Apply an event: change state first, then run the action.

        @param event: the event's name.
        @param args: passed to the action.
        @return: whether the table had a transition for it.
        """
        transition = self.table.get((self.state, event))
        if transition is None:
            return False
        self.state, action = transition
        if action is not None:
            getattr(self._owner, action)(*args)
        return True

