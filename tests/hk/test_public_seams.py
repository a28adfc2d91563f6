"""``pax.hk`` reaches the rest of PAX only through public names.

The rule, for every ``pax/hk/**/*.py`` (read with ``ast``, imports inside
functions included, relative imports resolved):

* a module outside ``pax.hk`` that ``pax.hk`` imports must be public: no
  component of its dotted path below ``pax`` starts with ``_``. That rules
  out ``pax.nn._conv``, ``pax.nets._resnet``, ``pax.initializers._x`` and the
  core's private packages (``pax._core``, ``pax._mixed_precision``, ...):
  core names come from the top-level ``pax`` namespace (``pax.Module``,
  ``pax.purecall``), which re-exports them.
* a name taken from such a module (``from pax.nn import X``, or an attribute
  ``nn.X`` of a module bound by an import) must be in that module's
  ``__all__`` or be one of its public submodules; a module without
  ``__all__`` cannot be imported from.
* what ``pax.hk`` needs beyond the public API comes from
  ``pax.nn.internal_api``, the documented seam (public by this rule; its
  ``__all__`` lists what it offers).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pathlib
import types

import pytest

import pax

ROOT = pathlib.Path(pax.__file__).parent
HK = ROOT / "hk"
HK_FILES = sorted(HK.rglob("*.py"))


def _module_name(path: pathlib.Path) -> tuple[str, str]:
    """(module name, the package relative imports start from)."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _outside_hk(name: str) -> bool:
    return (name == "pax" or name.startswith("pax.")) and not (
        name == "pax.hk" or name.startswith("pax.hk.")
    )


def _check_module(name: str) -> str | None:
    private = [p for p in name.split(".")[1:] if p.startswith("_")]
    if private:
        return f"imports the private module {name} ({private[0]!r})"
    return None


def _check_name(module: str, attr: str) -> str | None:
    if _is_module(f"{module}.{attr}"):
        return _check_module(f"{module}.{attr}")
    exported = getattr(importlib.import_module(module), "__all__", None)
    if exported is None:
        return f"takes {attr!r} from {module}, which has no __all__"
    if attr not in exported:
        return f"takes {attr!r} from {module}, which does not export it (__all__)"
    return None


def violations(source: str, module: str, package: str) -> list[str]:
    """What ``source`` (the text of ``module``, in ``package``) breaks."""
    found: list[str] = []
    bound: dict[str, str] = {}  # local name -> PAX module it stands for

    def report(node: ast.AST, problem: str | None) -> None:
        if problem:
            found.append(f"{module}:{node.lineno}: {problem}")

    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _outside_hk(alias.name):
                    report(node, _check_module(alias.name))
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound[alias.name.split(".")[0]] = "pax"
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not _outside_hk(target):
                continue
            report(node, _check_module(target))
            for alias in node.names:
                report(node, _check_name(target, alias.name))
                if _is_module(f"{target}.{alias.name}"):
                    bound[alias.asname or alias.name] = f"{target}.{alias.name}"

    def module_of(expr: ast.expr) -> str | None:
        """The PAX module ``expr`` (``nn``, ``pax.nn``...) stands for."""
        if isinstance(expr, ast.Name):
            return bound.get(expr.id)
        if isinstance(expr, ast.Attribute):
            parent = module_of(expr.value)
            if parent and _is_module(f"{parent}.{expr.attr}"):
                return f"{parent}.{expr.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parent = module_of(node.value)
            if parent:
                report(node, _check_name(parent, node.attr))
    return found


@pytest.mark.parametrize(
    "path", HK_FILES, ids=[str(p.relative_to(ROOT)) for p in HK_FILES]
)
def test_hk_uses_only_public_seams(path):
    module, package = _module_name(path)
    assert violations(path.read_text(), module, package) == []


def test_the_seam_is_documented():
    from pax.nn import internal_api

    assert "pax.hk" in internal_api.__doc__
    for name in internal_api.__all__:
        fn = getattr(internal_api, name)
        assert isinstance(fn, types.FunctionType)
        assert fn.__doc__ and ">>>" in fn.__doc__, name


BAD = {
    "from ..nn._conv import dimension_numbers": "private module pax.nn._conv",
    "from .._core.pure import purecall": "private module pax._core.pure",
    "from .._core import module": "private module pax._core",
    "import pax._mixed_precision as mp": "private module pax._mixed_precision",
    "from .. import nn\nnn._conv.dimension_numbers": "private module pax.nn._conv",
    "from ..nn import _utils": "private module pax.nn._utils",
    "from ..nn import dimension_numbers": "does not export it",
    "from .. import _core": "private module pax._core",
    "import pax\npax.nn._linear.bias_shape": "private module pax.nn._linear",
    "from .. import nets\nnets.ResNetBlock": "does not export it",
    "def f():\n    from pax.nets._mlp import MLP": "private module pax.nets._mlp",
}


@pytest.mark.parametrize("source", sorted(BAD))
def test_the_check_catches(source):
    problems = violations(source, "pax.hk._example", "pax.hk")
    assert any(BAD[source] in p for p in problems), problems


def test_the_check_allows():
    source = (
        "from .. import Module, nn, purecall\n"
        "from ..nn.internal_api import bias_shape\n"
        "from ..nn import pad, internal_api\n"
        "from . import _base\n"
        "import pax.initializers as init\n"
        "nn.Conv2D, init.TruncatedNormal, internal_api.conv_dimension_numbers\n"
    )
    assert violations(source, "pax.hk._example", "pax.hk") == []
