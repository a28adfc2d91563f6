"""Make ``import haiku`` load `pax.hk`, for dm-haiku's own tests.

`install` puts `pax.hk` and its public submodules in `sys.modules` under
dm-haiku's names and adds an import finder for ``haiku._src.*``:

* dm-haiku's test code (``*_test``, ``test_utils``, ``integration/*``) is
  loaded from the installed dm-haiku files, so it runs against the alias;
* any other ``haiku._src.<module>`` becomes a shim whose attributes are the
  `pax.hk` objects at the public path dm-haiku gives the same name
  (see `public_map`). An internal with no public path (or one `pax.hk`
  lacks) is a placeholder that raises `NoPublicPath` when a test uses it.

Only the harness's test subprocess calls `install`; importing this module
changes nothing.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import pathlib
import sys
import types
from collections.abc import Mapping, Sequence

# Placeholders for names the shim cannot serve raise with these markers, so
# failure reports say why (the expectations file groups failures by them).
NO_PUBLIC_PATH = "has no public path in dm-haiku"
MISSING_IN_PAX = "is public in dm-haiku but missing in pax.hk"


def _resolve(root: types.ModuleType, path: str) -> object:
    obj: object = builtins if path.startswith("builtins.") else root
    path = path.removeprefix("builtins.")
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


class NoPublicPath(AttributeError):
    """Raised when a test uses a `haiku._src` name `pax.hk` cannot serve.

    An `AttributeError`, so that probing a placeholder (`hasattr`, as pytest
    does with test methods) just answers no.
    """


class _Missing:
    """Stands in for a name the shim cannot serve, failing only when used.

    dm-haiku's test files touch internals at import time (parameter lists,
    decorators such as ``@config.with_config(...)``); failing there would lose
    every test in the file. Referencing the name, or calling it as a decorator
    (factory), is allowed; any other use raises `NoPublicPath`.
    """

    def __init__(self, message: str):
        self._message = message

    def __call__(self, *args: object, **kwargs: object) -> object:
        if (kwargs and not args) or (len(args) == 1 and callable(args[0])):
            return _Missing(self._message)
        raise NoPublicPath(self._message)

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NoPublicPath(self._message)

    def __enter__(self) -> None:
        raise NoPublicPath(self._message)

    def __exit__(self, *exc_info: object) -> None:
        pass

    def __repr__(self) -> str:
        return f"<missing: {self._message}>"


class _Shim(types.ModuleType):
    """A `haiku._src.<module>` stand-in serving public `pax.hk` objects."""

    def __init__(self, name: str, names: Mapping[str, str], root: types.ModuleType):
        super().__init__(name)
        self._public_names = dict(names)
        self._root = root

    def __getattr__(self, name: str) -> object:
        path = self._public_names.get(name)
        if name.startswith("__") or (path is None and hasattr(self, "__path__")):
            # A package: lets `from package import module` import the module,
            # and pytest probe it for hooks (`pytest_plugins`, `setup_module`).
            raise AttributeError(name)
        if path is None:
            value: object = _Missing(f"`{self.__name__}.{name}` {NO_PUBLIC_PATH}")
        else:
            try:
                value = _resolve(self._root, path)
            except AttributeError:
                message = f"`{self.__name__}.{name}` (haiku.{path}) {MISSING_IN_PAX}"
                value = _Missing(message)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._public_names))


class _RootLoader(importlib.abc.Loader):
    """Serves ``import haiku`` again after a test unloaded the alias (as
    dm-haiku's ``no_flax_test`` does): `pax.hk` and its public modules."""

    def __init__(self, root: types.ModuleType, table: Mapping[str, Mapping[str, str]]):
        self._root = root
        self._table = table

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self._root

    def exec_module(self, module: types.ModuleType) -> None:
        _alias_public_modules(module, self._table)
        _load_src(module)


class _ShimLoader(importlib.abc.Loader):
    def __init__(self, shim: _Shim):
        self._shim = shim

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> _Shim:
        return self._shim

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _is_test_code(fullname: str) -> bool:
    parts = fullname.split(".")
    leaf = parts[-1]
    return leaf.endswith("_test") or leaf == "test_utils" or "integration" in parts


class _Finder(importlib.abc.MetaPathFinder):
    """Answers every ``haiku.*`` import that is not already in `sys.modules`."""

    def __init__(
        self,
        real_root: pathlib.Path,
        table: Mapping[str, Mapping[str, str]],
        root: types.ModuleType,
    ):
        self._real_root = real_root
        self._table = table
        self._root = root

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "haiku":
            return importlib.machinery.ModuleSpec(
                fullname, _RootLoader(self._root, self._table)
            )
        if not fullname.startswith("haiku."):
            return None
        parts = fullname.split(".")
        if parts[1] != "_src":  # a public module pax.hk lacks
            raise ModuleNotFoundError(
                f"pax.hk has no module {fullname!r}", name=fullname
            )
        where = self._real_root.joinpath(*parts[1:])
        package = where / "__init__.py"
        source = package if package.exists() else where.with_suffix(".py")
        if not source.exists():
            return None
        search = [str(where)] if package.exists() else None
        if _is_test_code(fullname):
            return importlib.util.spec_from_file_location(
                fullname, source, submodule_search_locations=search
            )
        shim = _Shim(fullname, self._table.get(fullname, {}), self._root)
        spec = importlib.machinery.ModuleSpec(
            fullname, _ShimLoader(shim), is_package=search is not None
        )
        if search is not None:
            spec.submodule_search_locations = search
        return spec


def install(real_root: pathlib.Path, table: Mapping[str, Mapping[str, str]]) -> None:
    """Alias ``haiku`` to `pax.hk` in this process (irreversible).

    Args:
      real_root: the installed dm-haiku package directory (test files live
        there); dm-haiku itself is never imported.
      table: `public_map.build`'s output.
    """
    if "haiku" in sys.modules:
        raise RuntimeError("dm-haiku is already imported; cannot alias it")
    import pax.hk as hk

    sys.modules["haiku"] = hk
    _alias_public_modules(hk, table)
    sys.meta_path.insert(0, _Finder(real_root, table, hk))
    _load_src(hk)


def _load_src(hk: types.ModuleType) -> None:
    """Import ``haiku._src`` now and drop it from the package's attributes.

    dm-haiku's ``__init__`` imports ``_src`` and deletes the name, so
    walking the public package (as ``test_utils.find_subclasses`` does) never
    reaches the internals or the test helpers imported under them later.
    """
    importlib.import_module("haiku._src")
    if "_src" in vars(hk):
        delattr(hk, "_src")


def _alias_public_modules(
    hk: types.ModuleType, table: Mapping[str, Mapping[str, str]]
) -> None:
    for name, path in table["<modules>"].items():
        try:
            module = _resolve(hk, path)
        except AttributeError:
            continue  # the finder reports it missing
        sys.modules[name] = module  # type: ignore[assignment]
