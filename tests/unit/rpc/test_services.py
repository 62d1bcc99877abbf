"""
Unit tests of the service registry (L{txgetty.rpc.services}): registering
objects and methods, and the errors for bad registrations.
"""

from __future__ import annotations

import os
import types

from twisted.trial.unittest import SynchronousTestCase

from txgetty.rpc import RegistrationError, rpcmethod
from txgetty.rpc.services import ServiceRegistry

from ...support.rpc import Calc, Marked, Plain


class RegistryTests(SynchronousTestCase):
    """
    Registering services, and the errors for bad registrations.
    """

    def test_publicMethods(self) -> None:
        """
        A plain object exposes its public methods under its class name;
        private names, constants and nested classes are not exposed.
        """
        registry = ServiceRegistry()
        self.assertEqual(registry.register(Plain()), "Plain")
        self.assertEqual(registry.names(), {"Plain": ["greet"]})
        self.assertEqual(registry.lookup("Plain", "greet").qualifiedName, "Plain.greet")
        self.assertIsNone(registry.lookup("Plain", "_hidden"))
        self.assertIsNone(registry.lookup("Nope", "greet"))

    def test_markedMethods(self) -> None:
        """
        Once a method is marked with L{rpcmethod}, only marked methods are
        exposed, under their given names, with their blocking flag.
        """
        registry = ServiceRegistry()
        registry.register(Marked(), "M")
        self.assertEqual(registry.names(), {"M": ["one", "two"]})
        self.assertFalse(registry.lookup("M", "one").blocking)
        self.assertTrue(registry.lookup("M", "two").blocking)
        self.assertEqual(registry.lookup("M", "two").function(), 2)

    def test_module(self) -> None:
        """
        A module exposes the functions defined in it, not those it imports.
        """
        module = types.ModuleType("mathish")

        def double(x: int) -> int:
            """
            @return: C{2 * x}.
            """
            return 2 * x

        double.__module__ = "mathish"
        module.double, module.join = double, os.path.join  # type: ignore[attr-defined]
        registry = ServiceRegistry()
        self.assertEqual(registry.register(module), "mathish")
        self.assertEqual(registry.names(), {"mathish": ["double"]})

    def test_noName(self) -> None:
        """
        Values without a usable name are refused, saying what to do.
        """
        for obj, needle in (({}, "register an instance of your own class"),
                            ("text", "cannot register a str"),
                            (Plain, "register an instance"),
                            (types.SimpleNamespace(f=lambda: 1), "pass name=")):
            with self.assertRaises(RegistrationError) as ctx:
                ServiceRegistry().register(obj)
            self.assertIn(needle, str(ctx.exception))

    def test_classNamed(self) -> None:
        """
        Registering a class instead of an instance says so, naming the
        class.
        """
        with self.assertRaises(RegistrationError) as ctx:
            ServiceRegistry().register(Plain)
        self.assertIn("not the class Plain", str(ctx.exception))


    def test_badNames(self) -> None:
        """
        Service and method names must be non-empty text without dots or
        spaces.
        """
        for name in ("", "a.b", "a b", 5):
            with self.assertRaises(RegistrationError) as ctx:
                ServiceRegistry().register(Plain(), name)
            self.assertIn("service name", str(ctx.exception))

        class BadMethod:
            """
            A method renamed to a dotted name.
            """

            @rpcmethod(name="a.b")
            def f(self) -> None:
                """
                Never exposed.
                """

        with self.assertRaises(RegistrationError) as ctx:
            ServiceRegistry().register(BadMethod())
        self.assertIn("method name", str(ctx.exception))

    def test_duplicate(self) -> None:
        """
        A second service of the same name is refused, naming the first; the
        first stays.
        """
        registry = ServiceRegistry()
        registry.register(Plain())
        with self.assertRaises(RegistrationError) as ctx:
            registry.register(Calc(), "Plain")
        self.assertIn("already registered", str(ctx.exception))
        self.assertIn("Plain object", str(ctx.exception))
        self.assertEqual(registry.names(), {"Plain": ["greet"]})

    def test_nothingExposed(self) -> None:
        """
        An object without public methods is refused.
        """

        class Empty:
            """
            Only private things.
            """

            def _private(self) -> None:
                """
                Not exposed.
                """

        with self.assertRaises(RegistrationError) as ctx:
            ServiceRegistry().register(Empty())
        self.assertIn("exposes no methods", str(ctx.exception))
        self.assertIsInstance(ctx.exception, ValueError)

    def test_unregister(self) -> None:
        """
        A service can be removed, and its name used again.
        """
        registry = ServiceRegistry()
        registry.register(Plain())
        registry.unregister("Plain")
        self.assertFalse(registry.hasService("Plain"))
        registry.register(Marked(), "Plain")
        self.assertEqual(registry.names(), {"Plain": ["one", "two"]})


class RegistryNameTests(SynchronousTestCase):
    """
    "Service and method names must be non-empty text without dots or white
    space (any character for which str.isspace() is true)".
    """

    def test_whiteSpace(self) -> None:
        """
        Every kind of white space in a service name is refused.
        """
        for name in ("a b", "a\tb", "a\rb", "a\x0bb", "a\x0cb", "a\u3000b", "a\u00a0b", "a.b", ""):
            with self.assertRaises(RegistrationError):
                ServiceRegistry().register(Plain(), name)
