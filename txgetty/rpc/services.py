"""
Named services: plain objects whose public methods are exposed, or objects
whose methods marked with L{rpcmethod} are.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from .errors import RegistrationError

_MARK = "__txgetty_rpc__"


@dataclass(frozen=True)
class MethodInfo:
    """
    What L{rpcmethod} says about a method.

    @ivar name: the name callers use, or C{None} for the function's own.
    @ivar blocking: run it in the server's task pool (it blocks).
    """

    name: str | None = None
    blocking: bool = False


def rpcmethod(function: Callable[..., Any] | None = None, *, name: str | None = None,
              blocking: bool = False) -> Any:
    """
    Mark a method as exposed (once one method of a class is marked, only
    marked methods are exposed).  Use as C{@rpcmethod} or
    C{@rpcmethod(name="add", blocking=True)}.

    @param function: the method, when used without arguments.
    @param name: the name callers use.
    @param blocking: the method blocks (file or database I/O, a C call):
        run it in the server's task pool, not in the reactor thread.
    @return: the method, marked (or a decorator).
    """

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        setattr(f, _MARK, MethodInfo(name, blocking))
        return f

    return mark(function) if function is not None else mark


@dataclass(frozen=True)
class Method:
    """
    An exposed method.

    @ivar function: the bound callable.
    @ivar blocking: whether it runs in the task pool.
    @ivar qualifiedName: C{Service.method}.
    """

    function: Callable[..., Any]
    blocking: bool
    qualifiedName: str


def _checkName(kind: str, name: Any) -> str:
    """
    @param kind: C{"service"} or C{"method"}.
    @param name: a proposed name.
    @return: the name.
    @raise RegistrationError: it is empty, not text, or holds a dot or white
        space (any character for which C{str.isspace} is true).
    """
    if not isinstance(name, str) or not name or any(c == "." or c.isspace() for c in name):
        raise RegistrationError(f"a {kind} name must be non-empty text without dots or spaces, got {name!r}")
    return name


def _serviceName(obj: Any, name: str | None) -> str:
    """
    @param obj: the object registered.
    @param name: the name given, if any.
    @return: the service's name.
    @raise RegistrationError: no usable name, or an object that cannot be a
        service (a class, a builtin value).
    """
    if inspect.isclass(obj):
        raise RegistrationError(
            f"register an instance, not the class {obj.__name__} (e.g. register({obj.__name__}()))"
        )
    if not inspect.ismodule(obj) and type(obj).__module__ == "builtins":
        raise RegistrationError(
            f"cannot register a {type(obj).__name__} ({obj!r:.40}) as a service: register an instance "
            f"of your own class, or a module"
        )
    if name is not None:
        return _checkName("service", name)
    derived = obj.__name__ if inspect.ismodule(obj) else type(obj).__name__
    if derived == "SimpleNamespace":
        raise RegistrationError(f"cannot name the service {obj!r:.60} from its type: pass name='...'")
    return _checkName("service", derived.rsplit(".", 1)[-1])


def _exposed(obj: Any) -> dict[str, tuple[Callable[..., Any], MethodInfo]]:
    """
    @param obj: a service object.
    @return: its exposed methods by call name with their marks: the marked
        ones (private names included) if any is marked, otherwise every
        public callable.  Properties are not evaluated.
    @raise RegistrationError: two marked methods share a call name.
    """
    marked: dict[str, tuple[Callable[..., Any], MethodInfo]] = {}
    public: dict[str, tuple[Callable[..., Any], MethodInfo]] = {}
    for attr in dir(obj):
        if attr.startswith("__") or isinstance(inspect.getattr_static(obj, attr, None), property):
            continue
        value = getattr(obj, attr, None)
        if not callable(value) or inspect.isclass(value):
            continue
        info = getattr(value, _MARK, None)
        if info is not None:
            callName = info.name or attr
            if callName in marked:
                raise RegistrationError(f"two methods of {obj!r} are exposed as {callName!r}")
            marked[callName] = (value, info)
        elif attr.startswith("_"):
            continue
        elif not inspect.ismodule(obj) or getattr(value, "__module__", None) == obj.__name__:
            public[attr] = (value, MethodInfo())
    return marked or public


class ServiceRegistry:
    """
    The services of a server, by name.
    """

    def __init__(self) -> None:
        """
        Start empty.
        """
        #: Every method by service name and method name: what L{lookup}
        #: reads, for callers that look up on every call (read it, do not
        #: change it; L{register} and L{unregister} do).
        self.services: dict[str, dict[str, Method]] = {}
        self._owners: dict[str, Any] = {}

    def register(self, obj: Any, name: str | None = None) -> str:
        """
        Expose an object's methods as a named service.

        @param obj: an instance (or a module) with the methods.
        @param name: the service name (default: the class name).
        @return: the service name.
        @raise RegistrationError: no name, a duplicate, nothing exposed, or a
            bad method name.
        """
        service = _serviceName(obj, name)
        if service in self.services:
            raise RegistrationError(
                f"a service named {service!r} is already registered ({self._owners[service]!r}); "
                f"pass another name"
            )
        exposed = _exposed(obj)
        if not exposed:
            raise RegistrationError(
                f"service {service!r} ({obj!r}) exposes no methods: give it public methods, "
                f"or mark methods with @rpcmethod"
            )
        self.services[service] = {
            _checkName("method", m): Method(f, info.blocking, f"{service}.{m}") for m, (f, info) in exposed.items()
        }
        self._owners[service] = obj
        return service

    def unregister(self, name: str) -> None:
        """
        @param name: a registered service's name.
        @raise KeyError: no such service.
        """
        del self.services[name]
        del self._owners[name]

    def lookup(self, service: str, method: str) -> Method | None:
        """
        @param service: a service name.
        @param method: a method name.
        @return: the method, or C{None}.
        """
        methods = self.services.get(service)
        return None if methods is None else methods.get(method)

    def hasService(self, service: str) -> bool:
        """
        @param service: a service name.
        @return: whether it is registered.
        """
        return service in self.services

    def names(self) -> dict[str, list[str]]:
        """
        @return: every service with its sorted method names.
        """
        return {s: sorted(m) for s, m in sorted(self.services.items())}
