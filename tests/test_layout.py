"""The transport's boundary, read from the source: aiostorage/_transport/ is the one door to library internals.

Rule 1, private internals. Outside ``aiostorage/_transport/``, no code touches a private name (one
starting with ``_``, dunders aside) of another library; the transport keeps every such use in
``_transport/compat.py``, behind a check. In every other module of aiostorage:

- ``x._name`` is flagged unless ``x`` is a name bound to something of ours: an aiostorage module
  (``from . import compat``) or a class or function defined in aiostorage (in the module itself, or
  imported from one of ours). A parameter, a local, a call's result, or another library's module or
  class is flagged, whatever it holds: ``client._endpoint``, ``AioSession()._original_handler``,
  ``hashlib._Hash``.
- ``self._name`` and ``cls._name`` (a method's first parameter) are allowed when the enclosing class,
  or an aiostorage class it derives from, defines ``_name``: a method, a class attribute or field, or an
  assignment ``self._name = ...``. Otherwise the name comes from another library's base class
  (``self._verify`` in a subclass of aiobotocore's session) and is flagged.
- ``super()._name`` is allowed only when an aiostorage base class defines ``_name``.
- A method ``_name`` is flagged when a base class from another library defines ``_name``: overriding a
  private method is touching it. (A class defined inside a function, whose bases cannot be looked up,
  may define private methods only when all its bases are ours.)
- ``from library import _name``, ``import library._module`` and ``getattr``/``hasattr``/``setattr``/
  ``delattr`` with a literal private name of an object not ours are flagged.

Rule 2, one way down. ``aiostorage/_transport/`` imports nothing from ``aiostorage._store``,
``aiostorage._context``, ``aiostorage.transfer`` or ``aiostorage.events``: not at module level, not in a
function, not under ``TYPE_CHECKING``. Data flows store -> engines -> transport.

Rule 3, one door. Outside the transport, code imports ``aiostorage._transport`` itself, never one of its
modules: the engines use the interface, not the internals.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiostorage

ROOT = Path(aiostorage.__file__).parent
TRANSPORT = ROOT / "_transport"
FORBIDDEN_BELOW_TRANSPORT = ("aiostorage._store", "aiostorage._context", "aiostorage.transfer", "aiostorage.events")
_ATTRIBUTE_FUNCTIONS = {"getattr", "hasattr", "setattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _ours(module: str) -> bool:
    return module == "aiostorage" or module.startswith("aiostorage.")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(under: Path) -> Iterator[tuple[Path, str, ast.Module]]:
    for path in sorted(under.rglob("*.py")):
        yield path, _module_name(path), ast.parse(path.read_text(), str(path))


def _imported_module(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from ... import`` reads from."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str, path: Path, tree: ast.Module) -> Iterator[tuple[ast.stmt, str]]:
    """Every import in ``tree`` with what it reads: ``package.name`` for ``from package import name``
    (a module, or a name of the module), the module itself for ``import module``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _imported_module(module, path, node)
            for alias in node.names:
                yield node, f"{source}.{alias.name}"


def _is_ours(value: Any) -> bool:
    """Whether a runtime object is an aiostorage module, class or function."""
    if inspect.ismodule(value):
        return _ours(value.__name__)
    if inspect.isclass(value) or inspect.isfunction(value):
        return _ours(getattr(value, "__module__", "") or "")
    return False


def _our_names(module: str, path: Path, tree: ast.Module) -> set[str]:
    """Names bound at module level to aiostorage modules, classes and functions."""
    names = {node.name for node in tree.body if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _imported_module(module, path, node)
            if not _ours(source):
                continue
            loaded = importlib.import_module(source)
            for alias in node.names:
                value = getattr(loaded, alias.name, None)
                if value is None:
                    value = importlib.import_module(f"{source}.{alias.name}")
                if _is_ours(value):
                    names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _ours(alias.name):
                    names.add(alias.asname or alias.name.split(".")[0])
    return names


def _defined(cls: ast.ClassDef) -> set[str]:
    """The names a class defines: methods, class attributes and fields, and ``self.name = ...``."""
    names: set[str] = set()
    for node in cls.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    for method in cls.body:
        if not isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef) or not method.args.args:
            continue
        first = method.args.args[0].arg
        for node in ast.walk(method):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                targets = [node.target]
            for target in targets:
                for element in ast.walk(target):
                    if (
                        isinstance(element, ast.Attribute)
                        and isinstance(element.value, ast.Name)
                        and element.value.id == first
                    ):
                        names.add(element.attr)
    return names


# The names each class of aiostorage defines (module-level classes, by module and name).
_ClassIndex = dict[tuple[str, str], set[str]]


def _class_index() -> _ClassIndex:
    return {
        (module, node.name): _defined(node)
        for _, module, tree in _sources(ROOT)
        for node in tree.body
        if isinstance(node, ast.ClassDef)
    }


@dataclass(frozen=True)
class _Scope:
    node: ast.ClassDef
    runtime: type | None  # None for a class defined inside a function
    first: str | None  # the current method's first parameter (self or cls), if any


class _Checker(ast.NodeVisitor):
    def __init__(self, path: Path, module: str, tree: ast.Module, index: _ClassIndex, loaded: Any = None) -> None:
        self.path = path
        self.module = module
        self.tree = tree
        self.index = index
        self.ours = _our_names(module, path, tree)
        self.loaded = loaded if loaded is not None else importlib.import_module(module)
        self.scopes: list[_Scope] = []
        self.found: list[str] = []

    def check(self) -> list[str]:
        self.visit(self.tree)
        return self.found

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append(f"{self.path.relative_to(ROOT.parent)}:{getattr(node, 'lineno', '?')}: {what}")

    # Which private names a class may use on itself, on super(), and which of its methods override.

    def _own_chain(self, scope: _Scope, *, skip_self: bool) -> set[str]:
        if scope.runtime is None:
            return set() if skip_self else _defined(scope.node)
        names: set[str] = set()
        for klass in scope.runtime.__mro__[1 if skip_self else 0 :]:
            if _ours(klass.__module__):
                defined = self.index.get((klass.__module__, klass.__qualname__))
                names |= defined if defined is not None else _defined(scope.node) if klass is scope.runtime else set()
        return names

    def _foreign_defines(self, scope: _Scope, name: str) -> bool:
        if scope.runtime is None:
            return bool(scope.node.bases) and not all(
                isinstance(base, ast.Name) and base.id in self.ours for base in scope.node.bases
            )
        return any(name in vars(klass) for klass in scope.runtime.__mro__[1:] if not _ours(klass.__module__))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        runtime = getattr(self.loaded, node.name, None) if node in self.tree.body else None
        scope = _Scope(node, runtime if inspect.isclass(runtime) else None, None)
        for item in node.body:
            method = isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and _private(item.name)
            if method and self._foreign_defines(scope, item.name):
                self.flag(item, f"method {node.name}.{item.name} overrides another library's private method")
        self.scopes.append(scope)
        self.generic_visit(node)
        self.scopes.pop()

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self.scopes and self.scopes[-1].first is None and node in self.scopes[-1].node.body:
            static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
            first = None if static or not node.args.args else node.args.args[0].arg
            self.scopes[-1] = _Scope(self.scopes[-1].node, self.scopes[-1].runtime, first)
            self.generic_visit(node)
            self.scopes[-1] = _Scope(self.scopes[-1].node, self.scopes[-1].runtime, None)
        else:
            self.generic_visit(node)

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = _imported_module(self.module, self.path, node)
        if not _ours(source):
            for alias in node.names:
                if _private(alias.name) or any(_private(part) for part in source.split(".")):
                    self.flag(node, f"from {source} import {alias.name}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not _ours(alias.name) and any(_private(part) for part in alias.name.split(".")):
                self.flag(node, f"import {alias.name}")

    def visit_Call(self, node: ast.Call) -> None:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in _ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            self._check_access(node, node.args[0], node.args[1].value)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _private(node.attr):
            self._check_access(node, node.value, node.attr)
        self.generic_visit(node)

    def _check_access(self, node: ast.AST, base: ast.expr, name: str) -> None:
        scope = next((scope for scope in reversed(self.scopes) if scope.first is not None), None)
        if isinstance(base, ast.Name) and scope is not None and base.id == scope.first:
            if name not in self._own_chain(scope, skip_self=False):
                self.flag(node, f"{base.id}.{name}: not defined by {scope.node.name} or an aiostorage base")
        elif isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super":
            if not self.scopes or name not in self._own_chain(self.scopes[-1], skip_self=True):
                self.flag(node, f"super().{name}: a private of another library's base class")
        elif not (isinstance(base, ast.Name) and base.id in self.ours):
            self.flag(node, f"{ast.unparse(base)}.{name}: a private name of an object that is not ours")


def _violations_outside_transport() -> list[str]:
    index = _class_index()
    found: list[str] = []
    for path, module, tree in _sources(ROOT):
        if TRANSPORT not in path.parents:
            found += _Checker(path, module, tree, index).check()
    return found


def test_no_private_internals_outside_the_transport() -> None:
    assert _violations_outside_transport() == []
    assert (TRANSPORT / "compat.py").is_file(), "the transport keeps library internals in _transport/compat.py"


def test_the_transport_imports_nothing_above_it() -> None:
    modules = list(_sources(TRANSPORT)) if TRANSPORT.is_dir() else []
    assert modules, "aiostorage/_transport/ holds the transport"
    upward = [
        f"{path.relative_to(ROOT.parent)}:{node.lineno}: imports {imported}"
        for path, module, tree in modules
        for node, imported in _imports(module, path, tree)
        if any(imported == forbidden or imported.startswith(forbidden + ".") for forbidden in FORBIDDEN_BELOW_TRANSPORT)
    ]
    assert upward == []


def test_the_engines_use_the_transport_by_its_interface() -> None:
    reaching_in = [
        f"{path.relative_to(ROOT.parent)}:{node.lineno}: imports {imported}"
        for path, module, tree in _sources(ROOT)
        if TRANSPORT not in path.parents and path != TRANSPORT
        for node, imported in _imports(module, path, tree)
        if imported.startswith("aiostorage._transport.") and not _is_ours_name(imported)
    ]
    assert reaching_in == []


def _is_ours_name(imported: str) -> bool:
    """``aiostorage._transport.X`` where X is a name the package itself exports (not one of its modules)."""
    package = importlib.import_module("aiostorage._transport")
    name = imported.removeprefix("aiostorage._transport.")
    return name in getattr(package, "__all__", ())


def test_the_check_flags_what_it_should() -> None:
    """The rule on a sample: each line that reaches into another library is flagged, ours are not."""
    sample = """
from botocore.handlers import _handle_200_error
import botocore.auth
from aiobotocore.httpsession import AIOHTTPSession
from .._models import ObjectInfo


class Ours:
    def __init__(self, client):
        self._client = client

    def run(self, client):
        client._endpoint.http_session
        getattr(client, "_request_signer")
        return self._client, self._missing, ObjectInfo._private_helper


class Session(AIOHTTPSession):
    def _get_ssl_context(self):
        return super()._get_ssl_context()

    def connector(self):
        return self._connector_args


class Auth(botocore.auth.S3SigV4Auth):
    def _mine(self):
        return self._should_sha256_sign_payload(None)
"""
    module = "aiostorage.transfer.sample"
    tree = ast.parse(sample)
    checker = _Checker(ROOT / "transfer" / "sample.py", module, tree, _class_index(), _sample_module(sample, module))
    found = [line.split(": ", 1)[1] for line in checker.check()]
    assert found == [
        "from botocore.handlers import _handle_200_error",
        "client._endpoint: a private name of an object that is not ours",
        "client._request_signer: a private name of an object that is not ours",
        "self._missing: not defined by Ours or an aiostorage base",
        "method Session._get_ssl_context overrides another library's private method",
        "super()._get_ssl_context: a private of another library's base class",
        "self._connector_args: not defined by Session or an aiostorage base",
        "self._should_sha256_sign_payload: not defined by Auth or an aiostorage base",
    ]


def _sample_module(source: str, name: str) -> Any:
    """The sample run as a module of ours, so that its classes can be looked up as the check does."""
    namespace: dict[str, Any] = {"__name__": name}
    code = source.replace("from .._models import", "from aiostorage._models import")
    exec(compile(code, name, "exec"), namespace)
    module = type(importlib)(name)
    module.__dict__.update(namespace)
    return module
