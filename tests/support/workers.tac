# A twistd application (twistd -n -y tests/support/workers.tac) running a worker
# supervisor as a plain service: the JSON of tests/support/workerapps.py's main in
# $TXGETTY_TEST_SUPERVISOR.  Used by tests/test_workers_integration.py.
import json
import os

from twisted.application.service import Application, Service
from twisted.internet import reactor
from twisted.logger import Logger

from tests.support.workerapps import makeSupervisor, readyLine

_log = Logger()


class _SayReady(Service):
    def startService(self):
        Service.startService(self)
        supervisor.whenReady().addCallback(lambda s: _log.info("SUPERVISOR-READY {info}", info=readyLine(s)))


application = Application("txgetty workers test")
supervisor = makeSupervisor(json.loads(os.environ["TXGETTY_TEST_SUPERVISOR"]), reactor)
supervisor.setServiceParent(application)
_SayReady().setServiceParent(application)
