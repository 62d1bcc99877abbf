"""
Unit tests of the public facades: C{txgetty}, C{txgetty.rpc} and
C{txgetty.discovery} export every error class of their C{errors} module,
and every name they export is documented.
"""

from __future__ import annotations

from types import ModuleType
import inspect
import txgetty
import txgetty.discovery
import txgetty.discovery.errors
import txgetty.errors
import txgetty.rpc
import txgetty.rpc.errors

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.interface import InterfaceClass


def errorClasses(module: ModuleType) -> dict[str, type]:
    """
    @param module: an C{errors} module.
    @return: the exception classes it defines, by name.
    """
    return {
        name: obj for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__
    }


class FacadeTestsMixin:
    """
    What every facade promises; C{facade} and C{errors} name the modules.
    """

    facade: ModuleType
    errors: ModuleType

    def test_everyError(self: SynchronousTestCase) -> None:  # type: ignore[misc]
        """
        Every exception class of the errors module is in the facade's
        C{__all__}, as that very class.
        """
        classes = errorClasses(self.errors)  # type: ignore[attr-defined]
        self.assertTrue(classes)
        facade = self.facade  # type: ignore[attr-defined]
        missing = sorted(set(classes) - set(facade.__all__))
        self.assertEqual(missing, [], f"{facade.__name__}.__all__ lacks these errors")
        for name, cls in classes.items():
            self.assertIs(getattr(facade, name), cls)

    def test_allDocumented(self: SynchronousTestCase) -> None:  # type: ignore[misc]
        """
        Every name of C{__all__} exists, once, and (classes, interfaces
        and functions) has a docstring of its own.
        """
        facade = self.facade  # type: ignore[attr-defined]
        self.assertEqual(len(facade.__all__), len(set(facade.__all__)))
        undocumented = []
        for name in facade.__all__:
            obj = getattr(facade, name)
            if isinstance(obj, InterfaceClass):
                doc = obj.__doc__
            elif inspect.isclass(obj):
                doc = vars(obj).get("__doc__")
            elif callable(obj):
                doc = obj.__doc__
            else:
                continue
            if not (doc and doc.strip()):
                undocumented.append(name)
        self.assertEqual(undocumented, [])


class TxgettyFacadeTests(FacadeTestsMixin, SynchronousTestCase):
    """
    C{txgetty}: every error of L{txgetty.errors}, and the task pool.
    """

    facade = txgetty
    errors = txgetty.errors

    def test_taskPool(self) -> None:
        """
        The task pool and its interface are part of the facade.
        """
        from txgetty.taskpool import TaskPool

        self.assertIs(txgetty.TaskPool, TaskPool)
        self.assertIn("TaskPool", txgetty.__all__)
        self.assertIn("ITaskPool", txgetty.__all__)

    def test_version(self) -> None:
        """
        C{__version__} is exported: the package's version, as text.
        """
        self.assertIn("__version__", txgetty.__all__)
        self.assertIsInstance(txgetty.__version__, str)


class RpcFacadeTests(FacadeTestsMixin, SynchronousTestCase):
    """
    C{txgetty.rpc}: every error of L{txgetty.rpc.errors}.
    """

    facade = txgetty.rpc
    errors = txgetty.rpc.errors


class DiscoveryFacadeTests(FacadeTestsMixin, SynchronousTestCase):
    """
    C{txgetty.discovery}: every error of L{txgetty.discovery.errors}.
    """

    facade = txgetty.discovery
    errors = txgetty.discovery.errors
