"""Map dm-haiku's internal names (`haiku._src.<module>.<name>`) to public paths.

dm-haiku's tests reach into `haiku._src`; the harness answers those imports
with shim modules whose names resolve through the *public* path of the same
object (`haiku._src.basic.Linear` is `haiku.Linear`, so the shim serves
`pax.hk.Linear`). This module builds that table from the real dm-haiku: run it
in a process of its own (``python -m tests.haiku_suite.public_map``), since
importing dm-haiku next to the alias would mix the two libraries.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import types

# Values that are shared by identity for reasons other than being re-exports.
_PLAIN = (type(None), bool, int, float, str, bytes, tuple)


def _public_modules(haiku: types.ModuleType) -> dict[str, types.ModuleType]:
    """Every importable public module of dm-haiku (no `_src`, no benchmarks)."""
    found = {"haiku": haiku}
    for info in pkgutil.walk_packages(haiku.__path__, "haiku."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or "benchmarks" in parts:
            continue
        try:
            found[info.name] = importlib.import_module(info.name)
        except Exception:  # an optional dependency (flax) is missing
            continue
    return found


def _internal_modules(haiku: types.ModuleType) -> dict[str, types.ModuleType]:
    """dm-haiku's library modules under `haiku._src` (tests excluded)."""
    src = importlib.import_module("haiku._src")
    found = {"haiku._src": src}
    for info in pkgutil.walk_packages(src.__path__, "haiku._src."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.endswith("_test") or ".integration" in info.name:
            continue
        try:
            found[info.name] = importlib.import_module(info.name)
        except Exception:
            continue
    return found


def _builtin_base(error: type[Exception]) -> str:
    """An internal exception's nearest builtin base, as ``builtins.<name>``.

    Users can only catch what is public, so a test asserting that an internal
    error (`base.JaxUsageError`) is raised checks its builtin base instead.
    """
    base = next(c for c in error.__mro__ if c.__module__ == "builtins")
    return f"builtins.{base.__name__}"


def build() -> dict[str, dict[str, str]]:
    """Return ``{public or _src module: {name: public path}}``.

    Public paths are relative to the `haiku` package (``"Linear"``,
    ``"experimental.jaxpr_info"``), so they can be looked up in `pax.hk`;
    internal exception types map to their builtin base (``"builtins.ValueError"``).
    Public modules map to themselves under the key ``"<modules>"``.
    """
    import haiku

    public = _public_modules(haiku)
    by_id: dict[int, list[str]] = {}
    for modname, mod in public.items():
        prefix = modname.removeprefix("haiku").lstrip(".")
        for name, value in vars(mod).items():
            if name.startswith("_") or isinstance(value, _PLAIN):
                continue
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(value, types.ModuleType) and f"haiku.{path}" not in public:
                continue  # e.g. `jax` imported by a public module
            by_id.setdefault(id(value), []).append(path)

    table: dict[str, dict[str, str]] = {"<modules>": {}}
    for modname in public:
        if modname != "haiku":
            table["<modules>"][modname] = modname.removeprefix("haiku.")
    for modname, mod in _internal_modules(haiku).items():
        names = {}
        for name, value in vars(mod).items():
            if name.startswith("__") or isinstance(value, _PLAIN):
                continue
            paths = by_id.get(id(value))
            if not paths and isinstance(value, type) and issubclass(value, Exception):
                paths = [_builtin_base(value)]
            if not paths:
                continue
            # Prefer the path that keeps the name, then the shortest.
            paths = sorted(paths, key=lambda p: (p.rsplit(".", 1)[-1] != name, len(p)))
            names[name] = paths[0]
        table[modname] = names
    return table


if __name__ == "__main__":
    json.dump(build(), sys.stdout, indent=1, sort_keys=True)
