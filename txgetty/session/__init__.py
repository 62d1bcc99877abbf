"""
The session: one connection's protocol (L{Session}), its life cycle, flow
control and settings, and what it asks of the server or client slot that
owns it (L{SessionOwner}).

  - L{session <txgetty.session.session>}: L{Session}, the protocol, writes
    and the delivery loop;
  - L{lifecycle <txgetty.session.lifecycle>}: the states, the transition
    table and its actions, the timers;
  - L{flow <txgetty.session.flow>}: read pausing, write water marks, the
    task pool hand-off;
  - L{settings <txgetty.session.settings>}: the per-session settings;
  - L{errorlog <txgetty.session.errorlog>}: how a session logs a failure,
    once.

The package re-exports these names without an C{__all__}, so that the API
reference documents them where users import them: the C{txgetty} facade.
"""

from .session import Session, SessionOwner

