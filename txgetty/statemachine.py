"""
The one helper behind every life cycle of txgetty (the session, a client
slot, the discovery services): states as objects, a transition table built
from rows, the owner's C{fire} method generated from the table, and a text
drawing of the table.

A life cycle is declared with its states, then its table at the end of the
owner's class body, where the actions are plain functions::

    IDLE = State("IDLE")
    RUNNING = State("RUNNING", busy=True)

    class Worker:
        def __init__(self):
            self._state = IDLE

        def _doStart(self, why): ...

        TRANSITIONS = Table([
            (IDLE, "start", RUNNING, _doStart),
            (RUNNING, "stop", IDLE, None),
        ])
        _fire = TRANSITIONS.fire

Then C{worker._fire("start", "asked")} looks up C{(worker._state, "start")},
sets C{worker._state} to the next state I{first}, then runs the action,
C{_doStart(worker, "asked")}, and returns C{True}.  A pair not in the table
is ignored and returns C{False}: a late result after a stop, a second stop.
An action is a plain function reference (a function of the owner's class,
one it inherits, or a module function taking the owner first), never a
method name looked up at run time: an override in a subclass is not
called, the table says exactly what runs.  The state lives in one
attribute of the owner (C{attribute}, C{"_state"} by default), so that no
object is made per owner and firing costs one dictionary lookup and one
call.

A state's flags (C{State("OPEN", writable=True)}) are plain attributes: a
flag any state of a table has is C{False} on the others.

C{Table.diagram()} draws the table as text, one block per state, one line
per transition, in the order of the rows::

    IDLE
      start -> RUNNING _doStart
    RUNNING (busy)
      stop  -> IDLE    -

Each module with a table shows this drawing in its docstring, and a test
compares the two, so that the drawing cannot go stale.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from keyword import iskeyword
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Tuple

#: What an action is: a function called with the owner and the event's
#: arguments, or C{None} for none.
Action = Optional[Callable[..., Any]]
#: One row of a table: C{(source state, event, next state, action)}.
Row = Tuple["State", str, "State", Action]

#: The fire method's source.  Its arguments are positional parameters with
#: a marker default rather than C{*args}: CPython calls such a function, and
#: the action from it, without packing a tuple (a session fires four events
#: per connection).
_FIRE = '''
def fire(owner, event, a=NOTHING, b=NOTHING, c=NOTHING):
    transition = get((owner.{attribute}, event))
    if transition is None:
        return False
    owner.{attribute}, action = transition
    if action is not None:
        if a is NOTHING:
            action(owner)
        elif b is NOTHING:
            action(owner, a)
        elif c is NOTHING:
            action(owner, a, b)
        else:
            action(owner, a, b, c)
    return True
'''

#: The default of the fire method's arguments: none given.
_NOTHING = object()


class State:
    """
    One state of a life cycle: a name and flags (C{writable=True}, ...),
    which are attributes of the state.  States compare by identity.

    @ivar name: the state's name.
    """

    def __init__(self, name: str, /, **flags: bool) -> None:
        """
        @param name: the state's name (upper case by convention).
        @param flags: named properties of the state, read as attributes
            (C{state.writable}).
        @raise ValueError: a flag is named C{name}.
        """
        if "name" in flags:
            raise ValueError("a state's flag cannot be called 'name'")
        self.name = name
        self.__dict__.update(flags)

    if TYPE_CHECKING:
        # For the type checker only: a flag is any other attribute (at run
        # time a plain instance attribute, without a __getattr__ hook).
        def __getattr__(self, flag: str) -> bool: ...

    @property
    def flags(self) -> dict[str, bool]:
        """
        @return: the state's flags and their values.
        """
        return {k: v for k, v in vars(self).items() if k != "name"}

    def __repr__(self) -> str:
        return self.name


class Table(Mapping[Tuple[State, str], Tuple[State, Action]]):
    """
    A transition table: a mapping C{(state, event) -> (next state, action)}
    built from rows, with the owner's fire method made from it (L{fire}).

    @ivar rows: the rows, as given.
    @ivar initial: the first state (the source of the first row).
    @ivar attribute: the owner's attribute that holds its state.
    @ivar fire: the owner's fire method, C{fire(owner, event, *args) ->
        bool} with up to three arguments for the action: set it as an
        attribute of the owner's class (C{Owner._fire = TABLE.fire}).
    """

    def __init__(self, rows: Iterable[Row], attribute: str = "_state") -> None:
        """
        @param rows: C{(source, event, target, action)} per transition.
        @param attribute: the name of the owner's attribute that holds its
            current state.
        @raise ValueError: the table is empty, a pair is listed twice, an
            action is not callable, or C{attribute} is not an identifier.
        @raise TypeError: a state is not a L{State} or an event not a
            C{str}.
        """
        if not attribute.isidentifier() or iskeyword(attribute):
            raise ValueError(f"the state attribute must be an identifier, got {attribute!r}")
        self.rows: tuple[Row, ...] = tuple(rows)
        if not self.rows:
            raise ValueError("a transition table needs at least one row")
        self._transitions: dict[tuple[State, str], tuple[State, Action]] = {}
        for source, event, target, action in self.rows:
            if not isinstance(source, State) or not isinstance(target, State):
                raise TypeError(f"the states of a row must be State objects: {(source, event, target)!r}")
            if not isinstance(event, str):
                raise TypeError(f"an event must be a str, got {event!r}")
            if action is not None and not callable(action):
                raise ValueError(f"the action of {source!r} --{event}--> must be a function or None, got {action!r}")
            if (source, event) in self._transitions:
                raise ValueError(f"{source!r} --{event}--> is listed twice")
            self._transitions[(source, event)] = (target, action)
        self.initial = self.rows[0][0]
        self.attribute = attribute
        self._normalizeFlags()
        namespace: dict[str, Any] = {"get": self._transitions.get, "NOTHING": _NOTHING}
        exec(_FIRE.format(attribute=attribute), namespace)  # noqa: S102 (our own template)
        fire = namespace["fire"]
        fire.__doc__ = (
            f"Apply an event: look up (owner.{attribute}, event), set the next state, then run the "
            f"action with the owner and the arguments (up to three); a pair not in the table is "
            f"ignored.\n\n"
            f"@return: whether the table had a transition for it."
        )
        self.fire: Callable[..., bool] = fire

    def _normalizeFlags(self) -> None:
        """
        Give every state of the table every flag that one of them has
        (C{False} where it was not given).
        """
        states = self.states()
        names = {name for state in states for name in state.flags}
        for state in states:
            for name in names:
                if name not in vars(state):
                    setattr(state, name, False)

    def __getitem__(self, key: tuple[State, str]) -> tuple[State, Action]:
        return self._transitions[key]

    def __iter__(self) -> Iterator[tuple[State, str]]:
        return iter(self._transitions)

    def __len__(self) -> int:
        return len(self._transitions)

    def states(self) -> tuple[State, ...]:
        """
        @return: every state of the table: the sources in the order of
            their first row, then the states that are only targets (final
            states), in the order of first mention.
        """
        seen = dict.fromkeys(source for source, _, _, _ in self.rows)
        seen.update(dict.fromkeys(target for _, _, target, _ in self.rows if target not in seen))
        return tuple(seen)

    def events(self) -> tuple[str, ...]:
        """
        @return: every event of the table, in the order of first mention.
        """
        return tuple(dict.fromkeys(event for _, event, _, _ in self.rows))

    def diagram(self) -> str:
        """
        Draw the table as text: per state (in the order of L{states}), its
        name and true flags (sorted), then one line per transition from it,
        in row order: event, C{->}, next state, the action's name (C{-}
        for none), in aligned columns.

        @return: the drawing, lines joined with newlines, no trailing
            spaces.
        """
        eventWidth = max(len(event) for _, event, _, _ in self.rows)
        targetWidth = max(len(target.name) for _, _, target, _ in self.rows)
        lines = []
        for state in self.states():
            flags = sorted(name for name, value in state.flags.items() if value)
            lines.append(state.name + (f" ({', '.join(flags)})" if flags else ""))
            for source, event, target, action in self.rows:
                if source is state:
                    name = "-" if action is None else action.__name__
                    lines.append(f"  {event:<{eventWidth}} -> {target.name:<{targetWidth}} {name}".rstrip())
        return "\n".join(lines)
